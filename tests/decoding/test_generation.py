"""Tests for llmlab.decoding.generation: against transformers (greedy output, logits, loss), batching, errors.

(The optimised twin ``fast_generate`` is checked against this loop in test_fast_generation.py.)
"""

from __future__ import annotations

import ast
import inspect
import math
import re

import pytest
import torch

from llmlab.decoding import generation as G
from llmlab.decoding.batching import generate_batch, sample_many
from llmlab.decoding.chat_template import encode_prompt, stop_token_ids
from llmlab.decoding.context_window import ContextWindowError, check_fits
from llmlab.decoding.sampling import entropy
from llmlab.runtime.threads import use_threads

# Every prompt below is generated greedily ONCE for the whole file (fixture ``alone``): the
# reference the batch must equal; the PLAIN_PROMPTS / CHAT_PROMPTS among them are also compared
# with transformers' own generate, and other tests reuse the same generations.
BATCH_PLAIN = [
    "The capital of France is",
    "def fibonacci(n):",
    "Hi",
    "Once upon a time, in a small village,",
    "List three colours:",
    "The quick brown fox jumps over the lazy dog. Then the dog",
]
BATCH_CHAT = [
    "What is the capital of France?",
    "Say just the word hello.",
    [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Best fruit?"},
    ],
    "Name a colour.",
    [
        {"role": "system", "content": "You answer in one short sentence."},
        {"role": "user", "content": "Why is the sky blue?"},
    ],
]
PLAIN_TOKENS, CHAT_TOKENS = 10, 16
PLAIN_PROMPTS = [BATCH_PLAIN[0], BATCH_PLAIN[1], BATCH_PLAIN[3]]
CHAT_PROMPTS = [BATCH_CHAT[0], BATCH_CHAT[4]]


def hf_greedy(lm, prompt_ids: list[int], n: int, **kwargs) -> list[int]:
    ids = torch.tensor([prompt_ids])
    with torch.inference_mode(), use_threads(1):  # the thread policy generate() uses too
        out = lm.model.generate(
            ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n, **kwargs
        )
    return out[0, len(prompt_ids) :].tolist()


def hf_logits(lm, prompt_ids: list[int]) -> torch.Tensor:
    with torch.inference_mode(), use_threads(len(prompt_ids)):
        return lm.model(input_ids=torch.tensor([prompt_ids])).logits[0, -1].float()  # (V,)


@pytest.fixture(scope="module")
def alone(lm):
    """Each batch prompt generated greedily on its own, once: {"plain": [...], "chat": [...]}."""
    return {
        "plain": [G.generate(lm, p, max_new_tokens=PLAIN_TOKENS) for p in BATCH_PLAIN],
        "chat": [G.generate(lm, p, max_new_tokens=CHAT_TOKENS, chat=True) for p in BATCH_CHAT],
    }


# --- greedy = transformers --------------------------------------------------------------------


@pytest.mark.parametrize("prompt", PLAIN_PROMPTS)
def test_greedy_equals_transformers_plain(lm, alone, prompt):
    gen = alone["plain"][BATCH_PLAIN.index(prompt)]
    assert gen.prompt_ids == lm.tokenizer(prompt)["input_ids"]
    assert gen.token_ids == hf_greedy(lm, gen.prompt_ids, PLAIN_TOKENS)
    assert gen.text == lm.tokenizer.decode(gen.token_ids, skip_special_tokens=True)
    assert len(gen.steps) == len(gen.token_ids)


@pytest.mark.parametrize("prompt", CHAT_PROMPTS, ids=["string", "messages"])
def test_greedy_equals_transformers_chat(lm, alone, prompt):
    gen = alone["chat"][BATCH_CHAT.index(prompt)]
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    expected_prompt = lm.tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
    assert lm.tokenizer.decode(gen.prompt_ids) == expected_prompt
    assert gen.token_ids == hf_greedy(lm, gen.prompt_ids, CHAT_TOKENS)


def test_greedy_without_cache_is_the_same(lm, alone):
    with_cache = alone["plain"][0]  # PLAIN_PROMPTS[0], with the KV cache (the default)
    without = G.generate(lm, PLAIN_PROMPTS[0], max_new_tokens=6, use_cache=False)
    assert without.token_ids == with_cache.token_ids[:6]
    for a, b in zip(with_cache.steps[:6], without.steps, strict=True):
        assert a.prob == pytest.approx(b.prob, abs=1e-4)


def test_token_ids_prompt_continues_exactly(lm, alone):
    ids = lm.tokenizer("The capital of France is")["input_ids"]
    gen = G.generate(lm, ids, max_new_tokens=4)  # the text's generation = transformers' (above)
    assert gen.prompt_ids == ids and gen.token_ids == alone["plain"][0].token_ids[:4]


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


def test_steps_record_the_models_distribution(lm, alone):
    gen = alone["plain"][0]  # "The capital of France is"
    probs = torch.softmax(hf_logits(lm, gen.prompt_ids), -1)
    first = gen.steps[0]
    assert first.token_id == int(probs.argmax())
    assert first.prob == pytest.approx(float(probs.max()), abs=1e-5)
    assert first.entropy == pytest.approx(entropy(probs), abs=1e-4)
    assert 0 < first.entropy < math.log2(probs.numel())
    assert first.candidates[0].token_id == first.token_id


def test_perplexity_equals_exp_of_transformers_loss(lm):
    text = "The cat sat on the mat and looked out of the window."
    ids = torch.tensor([lm.tokenizer(text)["input_ids"]])
    with torch.inference_mode(), use_threads(ids.numel()):
        loss = lm.model(input_ids=ids, labels=ids).loss
    assert G.perplexity(lm, text) == pytest.approx(math.exp(float(loss)), rel=1e-4)
    scrambled = "window the mat looked of cat and sat out the on The."
    assert G.perplexity(lm, scrambled) > 3 * G.perplexity(lm, text)


# --- sampling and stopping --------------------------------------------------------------------


def test_same_seed_same_output_and_global_rng_untouched(lm):
    kwargs = dict(max_new_tokens=6, temperature=1.0, top_p=0.95)
    a = G.generate(lm, "Once upon a time", seed=7, **kwargs)
    torch.manual_seed(123)  # changing the global seed must not matter
    state = torch.get_rng_state()
    b = G.generate(lm, "Once upon a time", seed=7, **kwargs)
    assert a.token_ids == b.token_ids
    assert torch.equal(torch.get_rng_state(), state)  # the global generator was not used
    others = {tuple(G.generate(lm, "Once upon a time", seed=s, **kwargs).token_ids) for s in (1, 2)}
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
    )  # top_k=1 leaves only the most likely token: greedy, whatever the seed
    assert one.token_ids == [s.candidates[0].token_id for s in one.steps]
    assert all(s.token_id == max(s.candidates, key=lambda c: c.prob).token_id for s in one.steps)


def test_stops_at_end_of_sequence(lm, alone):
    gen = alone["chat"][1]  # "Say just the word hello.", up to CHAT_TOKENS tokens
    eos = lm.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert gen.stop_reason == "eos"
    assert gen.token_ids[-1] == eos
    assert eos not in gen.token_ids[:-1]
    assert len(gen.token_ids) < CHAT_TOKENS
    assert "<|im_end|>" not in gen.text
    assert eos in stop_token_ids(lm)
    short = G.generate(lm, "Say just the word hello.", max_new_tokens=1, chat=True)
    assert short.stop_reason == "length" and len(short.token_ids) == 1


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": -0.1}, "temperature must be >= 0"),
        ({"temperature": float("nan")}, "temperature must be >= 0"),
        ({"top_k": -1}, "top_k must be an integer >= 0"),
        ({"top_k": 2.5}, "top_k must be an integer >= 0"),
        ({"top_p": 0.0}, "top_p must be in (0, 1]"),
        ({"top_p": 1.5}, "top_p must be in (0, 1]"),
        ({"min_p": 1.0}, "min_p must be in [0, 1)"),
        ({"min_p": -0.1}, "min_p must be in [0, 1)"),
        ({"max_new_tokens": 0}, "max_new_tokens must be an integer >= 1"),
        ({"n_candidates": 0}, "n_candidates must be an integer >= 1"),
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
    with pytest.raises(ContextWindowError, match="context window of 8192 tokens") as info:
        G.generate(lm, [504] * (n - 5), max_new_tokens=10)
    assert isinstance(info.value, ValueError)
    assert "at most 5" in str(info.value)
    check_fits(lm, n - 10, 10)  # exactly full is fine
    with pytest.raises(ValueError, match="8193 tokens"):
        check_fits(lm, n, 1)


# --- several samples at once ------------------------------------------------------------------


def test_sample_many_greedy_rows_equal_generate(lm, alone):
    rows = sample_many(lm, "The capital of France is", n=2, max_new_tokens=5, temperature=0)
    single = alone["plain"][0].token_ids[:5]  # generate() of the same prompt
    assert [r.token_ids for r in rows] == [single] * 2
    assert rows[0].text == lm.tokenizer.decode(single, skip_special_tokens=True)


def test_sample_many_is_seeded_and_varied(lm):
    kwargs = dict(n=4, max_new_tokens=4, temperature=1.2, top_p=0.95)
    a = sample_many(lm, "My favourite fruit is", seed=3, **kwargs)
    b = sample_many(lm, "My favourite fruit is", seed=3, **kwargs)
    assert [g.token_ids for g in a] == [g.token_ids for g in b]
    assert len({g.text for g in a}) > 1
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        sample_many(lm, "Hi", n=0)


# --- context-window advice --------------------------------------------------------------------


def test_context_window_advice_names_what_to_cut(lm):
    n = lm.context_length
    with pytest.raises(ContextWindowError) as info:  # the request alone overflows
        check_fits(lm, 10, 100_000)
    msg = str(info.value)
    assert f"max_new_tokens to at most {n - 10}" in msg and "Shorten the prompt" not in msg
    assert "at most 0" not in msg and f"{100_010 - n} beyond" in msg
    with pytest.raises(ContextWindowError) as info:  # the prompt alone overflows
        check_fits(lm, n + 100, 10)
    msg = str(info.value)
    assert f"by at least 110 tokens (to at most {n - 10})" in msg and "max_new_tokens" not in msg
    with pytest.raises(ContextWindowError, match=f"add up to at most {n}"):
        check_fits(lm, n + 1, n + 1)


# --- stop strings and top_k = 0 ---------------------------------------------------------------


def test_stop_string_cuts_the_text(lm, alone):
    full = alone["plain"][BATCH_PLAIN.index("List three colours:")]  # PLAIN_TOKENS, no stop
    assert "\n" in full.text  # the greedy answer goes on past a line break ...
    cut = G.generate(lm, "List three colours:", max_new_tokens=PLAIN_TOKENS, stop=["\n"])
    assert cut.stop_reason == "stop" and "\n" not in cut.text  # ... unless told to stop there
    assert full.text.startswith(cut.text) and len(cut.token_ids) < len(full.token_ids)


def test_top_k_zero_means_off(lm):
    kwargs = dict(max_new_tokens=5, temperature=1.0, seed=4)
    off = G.generate(lm, "My favourite fruit is", top_k=0, **kwargs)
    assert off.token_ids == G.generate(lm, "My favourite fruit is", **kwargs).token_ids
    assert all(c.kept for s in off.steps for c in s.candidates)


# --- many prompts at once ---------------------------------------------------------------------


def test_batched_greedy_equals_one_at_a_time_plain(lm, alone):
    assert len({len(encode_prompt(lm, p)) for p in BATCH_PLAIN}) >= 5  # really left-padded
    batch = generate_batch(lm, BATCH_PLAIN, max_new_tokens=PLAIN_TOKENS)
    for one, got in zip(alone["plain"], batch, strict=True):
        assert got.token_ids == one.token_ids
        assert got.text == one.text and got.prompt_ids == one.prompt_ids
        assert [s.prob for s in got.steps] == pytest.approx([s.prob for s in one.steps], abs=1e-4)


def test_batched_greedy_equals_one_at_a_time_chat_each_row_stops(lm, alone):
    batch = generate_batch(lm, BATCH_CHAT, max_new_tokens=CHAT_TOKENS, chat=True)
    for one, got in zip(alone["chat"], batch, strict=True):
        assert got.token_ids == one.token_ids and got.stop_reason == one.stop_reason
    reasons = {g.stop_reason for g in batch}
    assert reasons == {"eos", "length"}  # some rows ended early, the others ran on
    eos = [g for g in batch if g.stop_reason == "eos"]
    assert all(
        len(g.token_ids) < CHAT_TOKENS and g.token_ids[-1] in stop_token_ids(lm) for g in eos
    )


def test_batch_sampling_is_seeded_and_stop_strings_work_per_row(lm):
    kwargs = dict(max_new_tokens=6, temperature=1.0, top_p=0.9, seed=5)
    a = generate_batch(lm, BATCH_PLAIN[:3], **kwargs)
    assert [g.token_ids for g in a] == [
        g.token_ids for g in generate_batch(lm, BATCH_PLAIN[:3], **kwargs)
    ]
    cut = generate_batch(lm, BATCH_PLAIN[:2], max_new_tokens=12, stop="\n")  # one string
    assert [g.stop_reason for g in cut] == ["stop", "stop"]
    assert all("\n" not in g.text for g in cut)


@pytest.mark.parametrize(
    ("prompts", "message"),
    [([], "prompts is empty"), ("Hello", "list of prompts"), (["Hi", "  "], "prompt is empty")],
)
def test_batch_bad_input(lm, prompts, message):
    with pytest.raises(ValueError, match=message):
        generate_batch(lm, prompts)


def test_batch_prompt_over_the_window_names_the_row(lm):
    with pytest.raises(ContextWindowError, match="Prompt 1: The prompt is 8190 tokens"):
        generate_batch(lm, ["Hi", [504] * 8190], max_new_tokens=10)


# --- the loop stays readable ----------------------------------------------------------------


def test_the_teaching_loop_stays_short_and_plain():
    """The loop next-token-prediction.ipynb points at fits one screen; extras live in its twin."""
    fn = ast.parse(inspect.getsource(G.generate)).body[0]
    code = fn.body[1:]  # after the docstring
    lines = code[-1].end_lineno - code[0].lineno + 1
    assert lines <= 45, f"generate's body is {lines} lines: move extras to fast_generation"
    params = set(inspect.signature(G.generate).parameters)
    assert not params & {"constraint", "prompt_cache", "repetition_penalty", "frequency_penalty"}
