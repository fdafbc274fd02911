"""Tests for llmlab.generation: against transformers (greedy output, logits, loss) and by properties."""

from __future__ import annotations

import math
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmlab import generation as G

PLAIN_PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
]
CHAT_PROMPTS = [
    "What is the capital of France?",
    [
        {"role": "system", "content": "You answer in one short sentence."},
        {"role": "user", "content": "Why is the sky blue?"},
    ],
]


def hf_greedy(lm, prompt_ids: list[int], n: int, **kwargs) -> list[int]:
    ids = torch.tensor([prompt_ids])
    with torch.inference_mode():
        out = lm.model.generate(
            ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n, **kwargs
        )
    return out[0, len(prompt_ids) :].tolist()


def hf_logits(lm, prompt_ids: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return lm.model(input_ids=torch.tensor([prompt_ids])).logits[0, -1].float()  # (V,)


# --- greedy = transformers --------------------------------------------------------------------


@pytest.mark.parametrize("prompt", PLAIN_PROMPTS)
def test_greedy_equals_transformers_plain(lm, prompt):
    gen = G.generate(lm, prompt, max_new_tokens=10)
    assert gen.prompt_ids == lm.tokenizer(prompt)["input_ids"]
    assert gen.token_ids == hf_greedy(lm, gen.prompt_ids, 10)
    assert gen.text == lm.tokenizer.decode(gen.token_ids, skip_special_tokens=True)
    assert len(gen.steps) == len(gen.token_ids)


@pytest.mark.parametrize("prompt", CHAT_PROMPTS, ids=["string", "messages"])
def test_greedy_equals_transformers_chat(lm, prompt):
    gen = G.generate(lm, prompt, max_new_tokens=10, chat=True)
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    expected_prompt = lm.tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
    assert lm.tokenizer.decode(gen.prompt_ids) == expected_prompt
    assert gen.token_ids == hf_greedy(lm, gen.prompt_ids, 10)


def test_greedy_without_cache_is_the_same(lm):
    with_cache = G.generate(lm, PLAIN_PROMPTS[0], max_new_tokens=6)
    without = G.generate(lm, PLAIN_PROMPTS[0], max_new_tokens=6, use_cache=False)
    assert without.token_ids == with_cache.token_ids
    for a, b in zip(with_cache.steps, without.steps, strict=True):
        assert a.prob == pytest.approx(b.prob, abs=1e-4)


def test_repetition_penalty_equals_transformers(lm):
    prompt = "I like apples. I like apples. I like"
    gen = G.generate(lm, prompt, max_new_tokens=8, repetition_penalty=1.5)
    assert gen.token_ids == hf_greedy(lm, gen.prompt_ids, 8, repetition_penalty=1.5)
    assert gen.token_ids != G.generate(lm, prompt, max_new_tokens=8).token_ids


def test_token_ids_prompt_continues_exactly(lm):
    ids = lm.tokenizer("The capital of France is")["input_ids"]
    assert G.generate(lm, ids, max_new_tokens=4).token_ids == hf_greedy(lm, ids, 4)


# --- probabilities = the model's softmax ------------------------------------------------------


def test_next_token_probs_equal_softmax_of_logits(lm):
    prompt = "The capital of France is"
    probs = torch.softmax(hf_logits(lm, lm.tokenizer(prompt)["input_ids"]), -1)
    cands = G.next_token_probs(lm, prompt, k=10)
    assert len(cands) == 10
    assert cands[0].token == " Paris"
    assert [c.prob for c in cands] == sorted((c.prob for c in cands), reverse=True)
    for c in cands:
        assert c.prob == pytest.approx(float(probs[c.token_id]), abs=1e-5)
        assert c.token == lm.tokenizer.decode([c.token_id])
    assert cands[0].token_id == int(probs.argmax())


def test_next_token_probs_with_temperature(lm):
    prompt = "My favourite colour is"
    logits = hf_logits(lm, lm.tokenizer(prompt)["input_ids"])
    for t in (0.5, 2.0):
        expected = torch.softmax(logits / t, -1)
        for c in G.next_token_probs(lm, prompt, k=5, temperature=t):
            assert c.prob == pytest.approx(float(expected[c.token_id]), abs=1e-5)
    greedy = G.next_token_probs(lm, prompt, k=3, temperature=0)
    assert [c.prob for c in greedy] == [1.0, 0.0, 0.0]


def test_steps_record_the_models_distribution(lm):
    prompt = "The capital of France is"
    gen = G.generate(lm, prompt, max_new_tokens=2)
    probs = torch.softmax(hf_logits(lm, gen.prompt_ids), -1)
    first = gen.steps[0]
    assert first.token_id == int(probs.argmax())
    assert first.prob == pytest.approx(float(probs.max()), abs=1e-5)
    assert first.entropy == pytest.approx(G.entropy(probs), abs=1e-4)
    assert 0 < first.entropy < math.log2(probs.numel())
    assert first.candidates[0].token_id == first.token_id


def test_perplexity_equals_exp_of_transformers_loss(lm):
    text = "The cat sat on the mat and looked out of the window."
    ids = torch.tensor([lm.tokenizer(text)["input_ids"]])
    with torch.inference_mode():
        loss = lm.model(input_ids=ids, labels=ids).loss
    assert G.perplexity(lm, text) == pytest.approx(math.exp(float(loss)), rel=1e-4)
    scrambled = "window the mat looked of cat and sat out the on The."
    assert G.perplexity(lm, scrambled) > 3 * G.perplexity(lm, text)


# --- the knobs, on one distribution -----------------------------------------------------------


def test_apply_temperature_examples_and_entropy():
    logits = torch.tensor([2.0, 1.0, 0.0])
    assert G.apply_temperature(logits, 1.0).tolist() == pytest.approx(
        [0.665, 0.245, 0.090], abs=1e-3
    )
    assert G.apply_temperature(logits, 0.5).tolist() == pytest.approx(
        [0.867, 0.117, 0.016], abs=1e-3
    )
    assert G.apply_temperature(logits, 0).tolist() == [1.0, 0.0, 0.0]
    entropies = [G.entropy(G.apply_temperature(logits, t)) for t in (0.1, 0.5, 1, 2, 10)]
    assert entropies == sorted(entropies)
    assert entropies[-1] < math.log2(3)


def test_entropy_in_bits():
    assert G.entropy([0.5, 0.5]) == pytest.approx(1.0)
    assert G.entropy([0.25] * 4) == pytest.approx(2.0)
    assert G.entropy([1.0, 0.0, 0.0]) == 0.0


def test_docstring_examples_of_filters():
    probs = [0.5, 0.3, 0.2]
    assert G.filter_top_k(probs, 2).tolist() == [True, True, False]
    assert G.filter_top_p(probs, 0.7).tolist() == [True, True, False]
    assert G.filter_top_p(probs, 0.8).tolist() == [True, True, False]  # 0.5 + 0.3 reaches 0.8
    assert G.filter_top_p(probs, 0.81).tolist() == [True, True, True]
    assert G.filter_min_p(probs, 0.5).tolist() == [True, True, False]
    assert G.filter_min_p(probs, 0.0).tolist() == [True, True, True]
    assert G.filter_top_p(probs, 1.0).all()
    assert G.renormalize(probs, [True, True, False]).tolist() == pytest.approx([0.625, 0.375, 0])


distributions = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40).filter(
    lambda xs: sum(xs) > 1e-3
)


@settings(max_examples=200, deadline=None)
@given(weights=distributions, p=st.floats(0.01, 1.0))
def test_top_p_keeps_the_smallest_set_reaching_p(weights, p):
    probs = torch.tensor(weights, dtype=torch.float32)
    probs = probs / probs.sum()
    keep = G.filter_top_p(probs, p)
    kept, cut = probs[keep], probs[~keep]
    assert keep.any()
    if cut.numel():  # the kept tokens are the most likely ones ...
        assert kept.min() >= cut.max()
    assert kept.sum() >= min(p, 1.0) - 1e-5  # ... their mass reaches p ...
    if kept.numel() > 1:  # ... and no smaller set of top tokens would
        assert kept.sum() - kept.min() < p + 1e-5


@settings(max_examples=100, deadline=None)
@given(weights=distributions, k=st.integers(1, 50))
def test_top_k_keeps_exactly_the_k_most_likely(weights, k):
    probs = torch.tensor(weights, dtype=torch.float32)
    keep = G.filter_top_k(probs, k)
    assert int(keep.sum()) == min(k, len(weights))
    if (~keep).any():
        assert probs[keep].min() >= probs[~keep].max()


@settings(max_examples=100, deadline=None)
@given(weights=distributions, min_p=st.floats(0.0, 0.99))
def test_min_p_threshold_is_relative_to_the_top_token(weights, min_p):
    probs = torch.tensor(weights, dtype=torch.float32)
    probs = probs / probs.sum()
    keep = G.filter_min_p(probs, min_p)
    threshold = min_p * probs.max()
    assert keep[probs.argmax()]
    assert (probs[keep] >= threshold).all()
    assert (probs[~keep] < threshold).all()


def test_sampling_distribution_cuts_and_renormalizes():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    dist = G.sampling_distribution(logits, 1.0, top_k=3, top_p=0.7)
    assert dist.tolist() == pytest.approx([0.625, 0.375, 0.0, 0.0], abs=1e-6)
    dist = G.sampling_distribution(logits, 1.0, min_p=0.2)  # threshold 0.1
    assert dist.tolist() == pytest.approx([0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0], abs=1e-6)


def test_penalties_push_used_tokens_down():
    logits = torch.tensor([2.0, -1.0, 0.5, 3.0])
    out = G.apply_penalties(logits, [0, 1], [], repetition_penalty=2.0)
    assert out.tolist() == [1.0, -2.0, 0.5, 3.0]
    out = G.apply_penalties(logits, [], [3, 3, 2], frequency_penalty=0.5, presence_penalty=1.0)
    assert out.tolist() == [2.0, -1.0, -1.0, 1.0]
    assert logits.tolist() == [2.0, -1.0, 0.5, 3.0]  # input untouched


# --- sampling and stopping --------------------------------------------------------------------


def test_same_seed_same_output_and_global_rng_untouched(lm):
    kwargs = dict(max_new_tokens=6, temperature=1.0, top_p=0.95)
    state = torch.get_rng_state()
    a = G.generate(lm, "Once upon a time", seed=7, **kwargs)
    torch.manual_seed(123)  # changing the global seed must not matter
    b = G.generate(lm, "Once upon a time", seed=7, **kwargs)
    assert a.token_ids == b.token_ids
    torch.set_rng_state(state)
    G.generate(lm, "Once upon a time", seed=7, **kwargs)
    assert torch.equal(torch.get_rng_state(), state)
    others = {
        tuple(G.generate(lm, "Once upon a time", seed=s, **kwargs).token_ids) for s in (1, 2, 3)
    }
    assert len(others | {tuple(a.token_ids)}) > 1


def test_sampling_only_picks_kept_tokens(lm):
    gen = G.generate(
        lm, "My favourite fruit is", max_new_tokens=4, temperature=1.5, top_k=3, seed=0
    )
    for step in gen.steps:
        top3 = [c.token_id for c in step.candidates[:3]]
        assert step.token_id in top3
        assert [c.kept for c in step.candidates] == [True] * 3 + [False] * 7
        assert 0 < step.sampled_prob <= 1
    one = G.generate(
        lm, "My favourite fruit is", max_new_tokens=4, temperature=1.0, top_k=1, seed=0
    )
    assert one.token_ids == G.generate(lm, "My favourite fruit is", max_new_tokens=4).token_ids


def test_stops_at_end_of_sequence(lm):
    gen = G.generate(lm, "Say just the word hello.", max_new_tokens=40, chat=True)
    eos = lm.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert gen.stop_reason == "eos"
    assert gen.token_ids[-1] == eos
    assert eos not in gen.token_ids[:-1]
    assert len(gen.token_ids) < 40
    assert "<|im_end|>" not in gen.text
    assert eos in G.stop_token_ids(lm)
    short = G.generate(lm, "Say just the word hello.", max_new_tokens=1, chat=True)
    assert short.stop_reason == "length" and len(short.token_ids) == 1


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": -0.1}, "temperature must be >= 0"),
        ({"temperature": float("nan")}, "temperature must be >= 0"),
        ({"top_k": 0}, "top_k must be an integer >= 1"),
        ({"top_k": 2.5}, "top_k must be an integer >= 1"),
        ({"top_p": 0.0}, "top_p must be in (0, 1]"),
        ({"top_p": 1.5}, "top_p must be in (0, 1]"),
        ({"min_p": 1.0}, "min_p must be in [0, 1)"),
        ({"min_p": -0.1}, "min_p must be in [0, 1)"),
        ({"max_new_tokens": 0}, "max_new_tokens must be an integer >= 1"),
        ({"repetition_penalty": 0.0}, "repetition_penalty must be > 0"),
    ],
)
def test_bad_settings_raise_with_the_valid_range(lm, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        G.generate(lm, "Hello", **kwargs)


@pytest.mark.parametrize("prompt", ["", "   ", [], [10**6]])
def test_empty_or_invalid_prompt_raises(lm, prompt):
    with pytest.raises(ValueError, match="empty|Token ids must be"):
        G.generate(lm, prompt)


def test_prompt_beyond_the_context_window_raises(lm):
    n = lm.context_length
    assert n == 8192
    with pytest.raises(G.ContextWindowError, match="context window of 8192 tokens") as info:
        G.generate(lm, [504] * (n - 5), max_new_tokens=10)
    assert isinstance(info.value, ValueError)
    assert "at most 5" in str(info.value)
    G.check_fits(lm, n - 10, 10)  # exactly full is fine
    with pytest.raises(ValueError, match="8193 tokens"):
        G.check_fits(lm, n, 1)


def test_filter_functions_validate_too():
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
        G.filter_top_p([0.5, 0.5], 0)
    with pytest.raises(ValueError, match="top_k"):
        G.filter_top_k([0.5, 0.5], 0)
    with pytest.raises(ValueError, match="min_p"):
        G.filter_min_p([0.5, 0.5], 1)
    with pytest.raises(ValueError, match="temperature"):
        G.apply_temperature([1.0, 2.0], -1)


# --- command line -----------------------------------------------------------------------------


def test_bar():
    assert G.bar(0.5, 4) == "██  "
    assert G.bar(1.0, 4) == "████"
    assert G.bar(0.0, 4) == "    "
    assert G.bar(1 / 32, 4) == "▏   "


@pytest.fixture
def cli_lm(lm, monkeypatch):
    """Let the CLI reuse the session's model instead of loading it again."""
    monkeypatch.setattr("llmlab.models.load_lm", lambda name=None: lm)
    return lm


def test_cli_prints_candidates_with_bars(cli_lm, capsys):
    assert G.cli(["The capital of France is", "--steps", "2", "--show", "3"]) == 0
    out = capsys.readouterr().out
    assert "step   1  → ' Paris'" in out
    assert "█" in out
    assert out.count("→") >= 4  # the step line + the marked candidate, for each step
    assert "Text (2 steps):\nThe capital of France is Paris" in out


def test_cli_sampling_chat_and_cut_marks(cli_lm, capsys):
    argv = ["Name a fruit.", "--chat", "--steps", "3", "--temperature", "0.8", "--top-k", "2"]
    assert G.cli([*argv, "--seed", "1"]) == 0
    first = capsys.readouterr().out
    assert "(cut)" in first
    assert G.cli([*argv, "--seed", "1"]) == 0
    assert capsys.readouterr().out == first  # same seed, same screen


def test_cli_bad_setting_exits_2(cli_lm, capsys):
    assert G.cli(["Hello", "--top-p", "2"]) == 2
    assert "top_p must be in (0, 1]" in capsys.readouterr().out
    assert G.cli(["Hello", "--steps", "0"]) == 2
    assert "max_new_tokens must be an integer >= 1" in capsys.readouterr().out
    assert G.cli(["   "]) == 2
    assert "The prompt is empty" in capsys.readouterr().out


def test_llmlab_command_dispatches_explore(cli_lm, capsys):
    from llmlab.cli import main

    assert main(["explore", "The capital of France is", "--steps", "1", "--show", "2"]) == 0
    assert "' Paris'" in capsys.readouterr().out


# --- several samples at once ------------------------------------------------------------------


def test_sample_many_greedy_rows_equal_generate(lm):
    rows = G.sample_many(lm, "The capital of France is", n=2, max_new_tokens=5, temperature=0)
    single = G.generate(lm, "The capital of France is", max_new_tokens=5)
    assert [r.token_ids for r in rows] == [single.token_ids] * 2
    assert rows[0].text == single.text


def test_sample_many_is_seeded_and_varied(lm):
    kwargs = dict(n=4, max_new_tokens=4, temperature=1.2, top_p=0.95)
    a = G.sample_many(lm, "My favourite fruit is", seed=3, **kwargs)
    b = G.sample_many(lm, "My favourite fruit is", seed=3, **kwargs)
    assert [g.token_ids for g in a] == [g.token_ids for g in b]
    assert len({g.text for g in a}) > 1
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        G.sample_many(lm, "Hi", n=0)
