"""llmlab.decoding.fast_generation: the optimised twin writes what the plain loop writes.

With no extras on, ``fast_generate`` = ``generate`` token for token (greedy) and draw for draw
(seeded sampling), on the real model. With extras: penalties = transformers' own; jump-forward
under a constraint = the same tokens in fewer forward passes; per-row constraints in a batch =
each row alone. (Prompt caching: test_prompt_cache.py; constraint engines: test_constraints.py.)
"""

from __future__ import annotations

import json
import re

import pytest
import torch

from llmlab.decoding.batching import generate_batch
from llmlab.decoding.constraints import GrammarConstraint
from llmlab.decoding.counting import count_passes
from llmlab.decoding.fast_generation import fast_generate
from llmlab.decoding.generation import generate
from llmlab.runtime.threads import use_threads

GREEDY = [  # (prompt, keyword arguments, why it ends): text, a chat that ends itself, a stop
    ("The capital of France is", dict(max_new_tokens=10), "length"),
    ("Say just the word hello.", dict(max_new_tokens=16, chat=True), "eos"),
    ("List three colours:", dict(max_new_tokens=10, stop=["\n"]), "stop"),
]
SAMPLED = [  # the same seed must give the same draws
    dict(max_new_tokens=6, temperature=1.0, top_p=0.95, seed=7),
    dict(max_new_tokens=6, temperature=1.5, top_k=3, min_p=0.05, seed=0),
]
CITY = {  # forcing: '{"city": "' and '"}' are written without asking the model
    "type": "object",
    "properties": {"city": {"type": "string", "enum": ["Paris", "Rome", "Oslo"]}},
    "required": ["city"],
    "additionalProperties": False,
}
NUMBER = {
    "type": "object",
    "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 100}},
    "required": ["n"],
    "additionalProperties": False,
}


def same_generation(a, b) -> None:
    assert a.token_ids == b.token_ids and a.text == b.text
    assert a.stop_reason == b.stop_reason and a.prompt_ids == b.prompt_ids
    assert len(a.steps) == len(b.steps) == len(a.token_ids)
    for x, y in zip(a.steps, b.steps, strict=True):
        assert x.token_id == y.token_id and x.token == y.token
        assert x.prob == pytest.approx(y.prob, abs=1e-5)
        assert x.sampled_prob == pytest.approx(y.sampled_prob, abs=1e-5)
        assert x.entropy == pytest.approx(y.entropy, abs=1e-4)
        assert [c.token_id for c in x.candidates] == [c.token_id for c in y.candidates]
        assert [c.kept for c in x.candidates] == [c.kept for c in y.candidates]


# --- no extras: the same as the plain loop --------------------------------------------------


@pytest.mark.parametrize(("prompt", "kwargs", "reason"), GREEDY, ids=["plain", "eos", "stop"])
def test_greedy_equals_the_plain_loop(lm, prompt, kwargs, reason):
    plain = generate(lm, prompt, **kwargs)
    same_generation(fast_generate(lm, prompt, **kwargs), plain)
    assert plain.stop_reason == reason


@pytest.mark.parametrize("kwargs", SAMPLED, ids=["top-p", "top-k+min-p"])
def test_seeded_sampling_draws_the_same_tokens(lm, kwargs):
    plain = generate(lm, "Once upon a time", **kwargs)
    same_generation(fast_generate(lm, "Once upon a time", **kwargs), plain)
    assert any(s.token_id != s.candidates[0].token_id for s in plain.steps)  # really sampled


def test_without_kv_cache_equals_the_plain_loop(lm):
    kwargs = dict(max_new_tokens=4, use_cache=False, n_candidates=3)
    same_generation(
        fast_generate(lm, "def fibonacci(n):", **kwargs),
        generate(lm, "def fibonacci(n):", **kwargs),
    )


# --- penalties ---------------------------------------------------------------------------------


def test_repetition_penalty_equals_transformers(lm):
    prompt = "I like apples. I like apples. I like"
    gen = fast_generate(lm, prompt, max_new_tokens=8, repetition_penalty=1.5)
    ids = torch.tensor([gen.prompt_ids])
    with torch.inference_mode(), use_threads(1):
        out = lm.model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=8,
            repetition_penalty=1.5,
        )
    assert gen.token_ids == out[0, ids.shape[1] :].tolist()
    # the penalty changed the output: at some step the model's own favourite was not written
    assert any(s.token_id != s.candidates[0].token_id for s in gen.steps)


def test_frequency_and_presence_penalties_follow_openais_formula(lm):
    """Reference: at each step, logit - count x frequency_penalty - (count > 0) x presence_penalty
    over the tokens written so far (OpenAI's definition), then greedy; one full pass per step."""
    prompt, n, freq, pres = "1, 2, 1, 2, 1, 2,", 8, 2.0, 2.0  # greedy: " 1, 2, 1" again
    gen = fast_generate(lm, prompt, max_new_tokens=n, frequency_penalty=freq, presence_penalty=pres)
    ids, new = list(gen.prompt_ids), []
    for _ in range(n):
        with torch.inference_mode(), use_threads(len(ids)):
            logits = lm.model(input_ids=torch.tensor([ids])).logits[0, -1].float()  # (V,)
        counts = torch.bincount(torch.tensor(new, dtype=torch.long), minlength=logits.numel())
        new.append(int((logits - freq * counts - pres * (counts > 0)).argmax()))
        ids.append(new[-1])
    assert gen.token_ids == new
    assert new != generate(lm, prompt, max_new_tokens=n, n_candidates=1).token_ids  # it mattered


# --- errors: the same checks and messages as the plain loop, plus the penalties' ---------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": -0.1}, "temperature must be >= 0"),
        ({"top_p": 0.0}, "top_p must be in (0, 1]"),
        ({"max_new_tokens": 0}, "max_new_tokens must be an integer >= 1"),
        ({"n_candidates": 0}, "n_candidates must be an integer >= 1"),
        ({"repetition_penalty": 0.0}, "repetition_penalty must be > 0"),
        ({"frequency_penalty": 3.0}, "frequency_penalty must be in [-2, 2]"),
        ({"presence_penalty": -2.5}, "presence_penalty must be in [-2, 2]"),
    ],
)
def test_bad_settings_raise_like_the_plain_loop(lm, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        fast_generate(lm, "Hello", **kwargs)
    if "penalty" not in next(iter(kwargs)):
        with pytest.raises(ValueError, match=re.escape(message)):
            generate(lm, "Hello", **kwargs)


def test_context_window_error_is_the_plain_loops(lm):
    errors = []
    for fn in (generate, fast_generate):
        with pytest.raises(ValueError) as info:
            fn(lm, [504] * (lm.context_length - 5), max_new_tokens=10)
        errors.append((type(info.value), str(info.value)))
    assert errors[0] == errors[1] and "context window of 8192 tokens" in errors[0][1]


# --- constraints: jump-forward, and one constraint per batch row --------------------------------


def test_jump_forward_and_per_row_batch_constraints_write_the_same_tokens(lm):
    """Rows constrained in one batch (one pass per token, no jumps) = each alone with jump-forward
    (forced tokens read together): same tokens, and jump-forward needs fewer passes."""
    prompts = [
        "Which city is the capital of Italy? Answer in JSON.",
        "Pick a number between 1 and 100, as JSON.",
        "Say hello.",
    ]
    schemas = [CITY, NUMBER, None]

    def constraints():
        return [
            None if s is None else GrammarConstraint(lm, schema=s, forcing=True) for s in schemas
        ]

    with count_passes(lm.model) as log:
        alone = [
            fast_generate(lm, p, max_new_tokens=16, chat=True, n_candidates=1, constraint=c)
            for p, c in zip(prompts, constraints(), strict=True)
        ]
    batch = generate_batch(lm, prompts, max_new_tokens=16, chat=True, constraints=constraints())
    for one, row in zip(alone, batch, strict=True):
        assert row.token_ids == one.token_ids and row.stop_reason == one.stop_reason
    for gen, schema in zip(batch[:2], schemas, strict=False):
        assert gen.stop_reason == "constraint"
        assert list(json.loads(gen.text)) == list(schema["properties"])
    assert batch[2].stop_reason in ("eos", "length")  # the free row was left alone
    tokens_constrained = sum(len(g.token_ids) for g in alone[:2])
    passes_constrained = log.passes - len(alone[2].token_ids)  # the free row: 1 pass per token
    assert passes_constrained < tokens_constrained  # forced runs were read in one pass each
    prompt_passes = {(1, len(g.prompt_ids)) for g in alone}
    assert any(t > 1 for shape in log.shapes if shape not in prompt_passes for t in shape[1:])


def test_batch_constraints_must_be_one_per_prompt(lm):
    with pytest.raises(ValueError, match="one constraint \\(or None\\) per prompt: 2 prompts"):
        generate_batch(lm, ["Hi", "Hello"], constraints=[None])
