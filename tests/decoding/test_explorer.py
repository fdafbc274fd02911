"""Tests for the explorer: llmlab.decoding.explorer (numbers, forcing), llmlab.views.gltr /
explorer_plots / terminal, llmlab.views.explorer_app (driven without a browser) and ``llmlab explore``."""

from __future__ import annotations

import re

import pytest
import torch

from llmlab.cli.explore import MAX_SHOW
from llmlab.cli.explore import cli as explore_cli
from llmlab.decoding.explorer import Explorer, Settings, explore, token_to_id
from llmlab.decoding.generation import generate, next_token_probs
from llmlab.views.explorer_app import ExplorerApp
from llmlab.views.explorer_plots import plot_exploration, plot_step
from llmlab.views.gltr import gltr_html
from llmlab.views.terminal import bar, format_step

PROMPT = "The capital of France is"


def model_probs(lm, ids):
    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0, -1]
    return torch.softmax(logits.float(), -1)


def test_view_equals_next_token_probs_and_softmax(lm):
    ex = Explorer(lm, PROMPT, Settings(temperature=1.0), n_candidates=10)
    rows = ex.view().rows
    ref = next_token_probs(lm, PROMPT, k=10)
    assert [r.token_id for r in rows] == [c.token_id for c in ref]
    for r, c in zip(rows, ref, strict=True):
        assert r.prob == pytest.approx(c.prob, abs=1e-5)
        assert r.tempered == pytest.approx(r.prob, abs=1e-6)  # T = 1 changes nothing
        assert r.kept and r.final == pytest.approx(r.prob, abs=1e-5)  # no filter
    probs = model_probs(lm, ex.prompt_ids)
    assert rows[0].prob == pytest.approx(float(probs.max()), abs=1e-5)
    assert rows[0].token == " Paris"


def transformers_reference(logits, settings):
    """The draw distribution as transformers' own logits warpers compute it (one filter at a time)."""
    from transformers.generation.logits_process import (
        MinPLogitsWarper,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    scores = logits[None].clone()  # (1, V)
    if settings.temperature == 0:  # greedy: everything on the argmax
        return torch.nn.functional.one_hot(logits.argmax(), logits.shape[-1]).float()
    scores = TemperatureLogitsWarper(settings.temperature)(None, scores)
    if settings.top_k:
        scores = TopKLogitsWarper(settings.top_k)(None, scores)
    if settings.top_p is not None:
        scores = TopPLogitsWarper(settings.top_p)(None, scores)
    if settings.min_p is not None:
        scores = MinPLogitsWarper(settings.min_p)(None, scores)
    return torch.softmax(scores, -1)[0]  # (V,)


@pytest.mark.parametrize(
    "settings",
    [
        Settings(temperature=0.7, top_k=3),
        Settings(temperature=1.3, top_p=0.6),
        Settings(temperature=1.0, min_p=0.1),
        Settings(temperature=0.0),
        Settings(temperature=1.0, top_k=0),  # 0 = off, as on the slider and in the CLI
    ],
)
def test_filtered_distribution_matches_transformers(lm, settings):
    ex = Explorer(lm, PROMPT, settings)
    probs, tempered, final = ex.distributions()
    ref = transformers_reference(ex.logits(), settings)
    assert torch.equal(final > 0, ref > 0)  # the same tokens survive
    assert torch.allclose(final, ref, atol=1e-5)
    assert torch.allclose(probs, torch.softmax(ex.logits(), -1), atol=1e-6)
    view = ex.view()
    assert view.n_kept == int((ref > 0).sum()) and view.n_vocab == probs.shape[-1]
    if settings.top_k:
        assert view.n_kept == settings.top_k
        assert [r.kept for r in view.rows] == [True] * 3 + [False] * 7
    if settings == Settings(temperature=1.0, top_k=0):
        assert view.n_kept == view.n_vocab  # nothing cut


def test_greedy_explore_equals_generate(lm):
    ex = explore(lm, PROMPT, steps=6, temperature=0.0)
    gen = generate(lm, PROMPT, max_new_tokens=6, temperature=0.0)
    assert [s.token_id for s in ex.steps] == gen.token_ids
    for s, g in zip(ex.steps, gen.steps, strict=True):
        assert s.prob == pytest.approx(g.prob, abs=1e-5)
        assert s.entropy == pytest.approx(g.entropy, abs=1e-3)
        assert s.rank == 1 and not s.forced


def test_forcing_a_token_branches_the_continuation(lm):
    ex = explore(lm, PROMPT, steps=4, temperature=0.0, forced={0: " Lyon"})
    first = ex.steps[0]
    assert first.token == " Lyon" and first.forced
    assert first.rank > 1 and first.final_prob == 0.0  # greedy would never pick it
    assert first.prob == pytest.approx(
        float(model_probs(lm, ex.prompt_ids)[first.token_id]), abs=1e-5
    )
    # after the forced token, greedy carries on from the new branch
    branch = generate(lm, ex.prompt_ids + [first.token_id], max_new_tokens=3, temperature=0.0)
    assert [s.token_id for s in ex.steps[1:]] == branch.token_ids
    assert ex.text.startswith(" Lyon")


def test_sampling_is_seeded_and_undo_works(lm):
    a = explore(lm, PROMPT, steps=5, temperature=1.2, seed=7)
    b = explore(lm, PROMPT, steps=5, temperature=1.2, seed=7)
    assert [s.token_id for s in a.steps] == [s.token_id for s in b.steps]
    ex = Explorer(lm, PROMPT, Settings(temperature=0.0))
    ex.step()
    ex.step()
    removed = ex.undo()
    assert len(ex.steps) == 1 and removed is not None
    assert ex.step().token_id == removed.token_id  # greedy: same branch again
    # after undo and a forced branch, the (KV-cached) distribution still equals a fresh forward pass
    ex.undo()
    ex.step(" Lyon")
    fresh = model_probs(lm, ex.ids)
    assert torch.allclose(ex.distributions()[0], fresh, atol=1e-5)


def test_bad_input_gives_clear_errors(lm):
    with pytest.raises(ValueError, match="temperature"):
        Explorer(lm, PROMPT, Settings(temperature=-1))
    with pytest.raises(ValueError, match="top_p"):
        Explorer(lm, PROMPT, Settings(top_p=1.5))
    with pytest.raises(ValueError, match="not one"):
        token_to_id(lm, " Saint-Tropez")
    with pytest.raises(ValueError, match=r"\[0, "):
        token_to_id(lm, 10**9)
    with pytest.raises(ValueError, match="forced"):
        explore(lm, PROMPT, steps=2, forced={5: " Paris"})
    with pytest.raises(ValueError, match="empty"):
        Explorer(lm, "   ")


def test_static_figure(lm):
    figure = plot_exploration(explore(lm, PROMPT, steps=3, temperature=0.0, top_k=5))
    assert len(figure.axes) == 3  # steps, entropy twin, candidates
    bottom = figure.axes[1]  # axes: steps, candidates, then the entropy twin
    labels = [t.get_text() for t in bottom.get_yticklabels()]
    assert repr(" Paris") in labels


def test_gltr_html_is_self_contained(lm):
    ex = explore(lm, "x < y & z", steps=5, temperature=0.0, forced={0: "\n"})
    page = gltr_html(ex.steps, prompt="x < y & z")
    assert "<script" not in page.lower()
    assert not re.search(r"https?://|src=|href=|@import|url\(", page)
    assert "x &lt; y &amp; z" in page  # escaped
    assert page.count("<span title=") == len(ex.steps)
    assert "rank 1" in page and "entropy" in page and "forced" in page
    # generation.Step works too (rank found among its candidates)
    gen = generate(lm, PROMPT, max_new_tokens=3)
    assert gltr_html(gen.steps).count("rank 1") == 3


def test_widget_app_builds_and_responds(lm):
    app = ExplorerApp(lm, prompt=PROMPT, n_candidates=5)
    assert app.chart.value[:4] == b"\x89PNG"
    assert len(app.candidates.children) == 5
    app.temperature.value = 0.0  # greedy
    app.step_button.click()
    assert app.explorer.steps[-1].token == " Paris"
    target = app.explorer.view().rows[2].token_id
    app.candidates.children[2].click()  # force the third candidate
    assert app.explorer.steps[-1].token_id == target and app.explorer.steps[-1].forced
    assert "forced" in app.text.value
    app.temperature.value = 1.0
    app.top_k.value = 2
    assert "2 of" in app.status.value
    app.undo_button.click()
    assert len(app.explorer.steps) == 1
    app.prompt_box.value = "   "
    app.restart_button.click()
    assert "empty" in app.status.value  # a bad prompt is reported, not raised ...
    assert app.chart.value == b"" and not app.candidates.children and app.text.value == ""
    assert app.explorer is None  # ... and nothing stale stays on screen
    bad = ExplorerApp(lm, prompt="")  # an invalid first prompt: status says why, nothing breaks
    assert "empty" in bad.status.value
    bad.step_button.click()
    bad.temperature.value = 0.5
    assert bad.explorer is None


def test_candidate_buttons_say_what_the_chart_says(lm):
    """Cut candidates are orange buttons whose label is the chart's label for the same row."""
    import matplotlib.pyplot as plt

    app = ExplorerApp(lm, prompt=PROMPT, n_candidates=6)
    app.top_k.value = 2
    view = app.explorer.view()
    _, ax = plt.subplots()
    plot_step(view, ax)
    chart_labels = sorted(t.get_text() for t in ax.texts)
    plt.close("all")
    buttons = app.candidates.children
    assert chart_labels == sorted(r.label for r in view.rows)
    for b, r in zip(buttons, view.rows, strict=True):
        assert b.description == f"{r.token!r} {r.label}"
        assert (b.button_style == "warning") == (not r.kept)
        assert ("(cut" in b.description) == (not r.kept)
    assert sum(not r.kept for r in view.rows) == 4  # top-k 2 of 6 shown: 4 cut
    assert all(r.label.startswith("0% (cut") for r in view.rows if not r.kept)
    assert "orange" in app.widget.children[6].value  # the legend above the buttons


def test_first_view_is_untouched_and_a_full_window_is_reported(lm, monkeypatch):
    app = ExplorerApp(lm, prompt=PROMPT)
    assert app.explorer.steps == [] and app.temperature.value == 1.0 and app.top_k.value == 0
    assert app.status.value.startswith("step 0") and app.chart.value[:4] == b"\x89PNG"
    # the context window fills up after one token: a red status line, no exception, no stale chart
    room = len(app.explorer.ids) + 1
    monkeypatch.setattr(type(lm), "context_length", property(lambda self: room))
    app.step(3)
    assert "context window" in app.status.value and "color:#b00" in app.status.value
    assert len(app.explorer.steps) == 1 and app.text.value.count("<span title=") == 1
    assert app.chart.value == b"" and not app.candidates.children


def test_terminal_bars_and_steps(lm):
    assert bar(0.5, 4) == "██  " and bar(2.0, 3) == "███" and bar(-1, 2) == "  "
    gen = generate(lm, PROMPT, max_new_tokens=1, top_k=2, temperature=1.0, seed=0, n_candidates=4)
    text = format_step(1, gen.steps[0])
    assert text.count("\n") == 4 and text.count("(cut)") == 2 and "→" in text


# --- llmlab explore: every bad input is one line on stderr, exit code 2, no traceback ---------------


@pytest.fixture
def run_cli(lm, monkeypatch, capsys):
    """Run ``llmlab explore`` in-process with the session's model; return (code, stdout, stderr)."""
    import llmlab.runtime.models

    monkeypatch.setattr(llmlab.runtime.models, "load_lm", lambda name=None, **kw: lm)

    def run(*argv):
        code = explore_cli(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["   "], "prompt is empty"),
        (["hi", "--steps", "0"], "--steps must be"),
        (["hi", "--steps", "abc"], "--steps"),
        (["hi", "--temperature", "-1"], "--temperature must be"),
        (["hi", "--top-k", "-3"], "--top-k"),
        (["hi", "--top-p", "1.5"], "--top-p"),
        (["hi", "--min-p", "1"], "--min-p"),
        (["hi", "--show", "0"], "--show must be"),
        (["hi", "--steps", "100000"], "--steps 100000 does not fit: the window is"),
        (["hi", "--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_cli_bad_input_is_one_line(run_cli, lm, argv, needle):
    code, out, err = run_cli(*argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("llmlab explore: ") and needle in err
    assert "Traceback" not in err and "max_new_tokens" not in err and "n_candidates" not in err
    if "100000" in argv:  # the advice is the right one: how many steps do fit
        n_prompt = len(lm.tokenizer("hi", add_special_tokens=False)["input_ids"])
        assert f"the prompt uses {n_prompt}; use --steps <= {lm.context_length - n_prompt}" in err


def test_cli_top_k_zero_is_off_and_show_is_capped(run_cli):
    argv = [PROMPT, "--steps", "1", "--temperature", "1", "--seed", "0", "--show", "100000"]
    code, out, err = run_cli(*argv, "--top-k", "0")
    assert code == 0 and f"capped at {MAX_SHOW}" in err and err.count("\n") == 1
    assert " Paris" in out and not any(line.endswith("(cut)") for line in out.splitlines())
    _, cut_out, _ = run_cli(*argv, "--top-k", "3")  # a real top-k cuts the rest of the shown 20
    assert sum(line.endswith("(cut)") for line in cut_out.splitlines()) == MAX_SHOW - 3
    assert len(out.splitlines()) < MAX_SHOW + 12  # one step: header, MAX_SHOW candidates, text


def test_cli_unknown_model_is_one_line(capsys):
    code = explore_cli(["hi", "--model", "/no/such/model-folder"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err


def test_scoring_a_given_text_in_one_pass_equals_step_by_step(lm):
    """Every step forced (scoring a text): one read-ahead pass, same steps as one pass per token."""
    ids = lm.tokenizer(" is a city on the Seine.", add_special_tokens=False)["input_ids"]
    fast = explore(lm, PROMPT, steps=len(ids), forced=dict(enumerate(ids)))
    slow = Explorer(lm, PROMPT, Settings(temperature=1.0))
    for i in ids:
        slow.step(i)
    assert [s.token_id for s in fast.steps] == ids == [s.token_id for s in slow.steps]
    for f, s in zip(fast.steps, slow.steps, strict=True):
        assert f.rank == s.rank and f.forced
        assert f.prob == pytest.approx(s.prob, rel=1e-4, abs=1e-7)
        assert f.entropy == pytest.approx(s.entropy, abs=1e-4)
