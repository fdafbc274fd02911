"""The tidy-output check that runs after every notebook cell (the top-level ``conftest.py``)."""

from __future__ import annotations

from conftest import tidy_output_problems


def stream(text: str, name: str = "stdout") -> dict:
    return {"output_type": "stream", "name": name, "text": text}


def result(text: str) -> dict:
    return {"output_type": "execute_result", "data": {"text/plain": text}, "metadata": {}}


def test_the_noise_issue_21_found_is_caught():
    assert tidy_output_problems([stream("scores: [np.float64(0.34), np.float64(0.5)]")])
    assert tidy_output_problems([stream("95% CI (0.0, 0.4166666666666667)")])
    assert tidy_output_problems([result("(np.int64(3), np.True_)")])
    warning = "`torch_dtype` is deprecated! Use `dtype` instead!\n"
    assert tidy_output_problems([stream(warning, "stderr")])
    assert tidy_output_problems([stream("UserWarning: something odd\n", "stderr")])


def test_tidy_output_passes():
    assert not tidy_output_problems([stream("recall@5 0.82 [0.71, 0.90]\n")])
    assert not tidy_output_problems([result("array([0.41666667, 0.5       ])")])  # numpy rounds
    assert not tidy_output_problems([stream("token id 100257, 3.14159 rad, 1e-10\n")])
    assert not tidy_output_problems([result("LlamaRMSNorm((576,), eps=9.999999747378752e-06)")])
    bar = "training: 40%|████      | 4/10 [00:05<00:07, 1.2s/it, loss=0.8]\r"
    assert not tidy_output_problems([stream(bar, "stderr")])
    assert not tidy_output_problems([stream("the word 'warning' in a lesson's own printout\n")])


def test_each_problem_says_what_to_change():
    (problem,) = tidy_output_problems([stream("[np.float64(0.5)]")])
    assert "np.float64(0.5)" in problem and "float(x)" in problem
    (problem,) = tidy_output_problems([stream("0.4166666666666667")])
    assert "16 decimals" in problem and "round" in problem
