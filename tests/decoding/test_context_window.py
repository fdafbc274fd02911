"""Tests for llmlab.decoding.context_window: truncation, timings, the needle test."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from llmlab.decoding import context_window as W
from llmlab.decoding.chat_template import chat_parts, count_chat_tokens
from llmlab.decoding.context_window import ContextWindowError, check_fits
from llmlab.decoding.generation import generate


def long_chat(n_turns: int = 12) -> list[dict]:
    msgs = [{"role": "system", "content": "You are a helpful travel agent."}]
    for i in range(n_turns):
        msgs.append({"role": "user", "content": f"Question {i}: tell me about city number {i}."})
        msgs.append(
            {"role": "assistant", "content": f"City {i} has a river, a museum and {i} parks."}
        )
    msgs.append({"role": "user", "content": "Which city had the most parks?"})
    return msgs


def test_timings_run_and_check_their_input(lm):
    decode = W.decode_seconds(lm, [8, 16], rounds=1)
    prefill = W.prefill_seconds(lm, [4, 8], rounds=1)
    assert len(decode) == 2 and len(prefill) == 2
    assert all(0 < t < 60 for t in decode + prefill)
    with pytest.raises(ValueError, match="integers >= 1"):
        W.decode_seconds(lm, [0])
    with pytest.raises(ValueError, match="rounds"):
        W.prefill_seconds(lm, [4], rounds=0)


# --- truncation -------------------------------------------------------------------------------


def test_truncate_tokens_examples():
    assert W.truncate_tokens([1, 2, 3, 4, 5], 4, "both") == [1, 2, 4, 5]
    assert W.truncate_tokens([1, 2, 3, 4, 5], 2, "end") == [4, 5]
    assert W.truncate_tokens([1, 2, 3, 4, 5], 2, "start") == [1, 2]
    assert W.truncate_tokens([1, 2], 5) == [1, 2]
    with pytest.raises(ValueError, match="keep"):
        W.truncate_tokens([1], 1, "middle")
    with pytest.raises(ValueError, match="max_tokens"):
        W.truncate_tokens([1], 0)


@given(
    st.lists(st.integers(0, 9), max_size=40),
    st.integers(1, 30),
    st.sampled_from(["end", "start", "both"]),
)
def test_truncate_tokens_properties(ids, n, keep):
    out = W.truncate_tokens(ids, n, keep)
    assert len(out) == min(len(ids), n)
    if len(ids) > n:
        if keep != "end":
            assert out[0] == ids[0]
        if keep == "end" or (keep == "both" and n >= 2):
            assert out[-1] == ids[-1]


def test_truncate_chat_keeps_system_and_recent_and_fits(lm):
    chat = long_chat(12)
    full = count_chat_tokens(lm, chat)
    budget = full // 3
    out = W.truncate_chat(lm, chat, budget, reserve=20)
    assert count_chat_tokens(lm, out) + 20 <= budget
    assert out[0] == chat[0]  # system kept
    assert out[-1] == chat[-1]  # the question kept
    assert out[1]["role"] == "user"  # history never opens with the assistant
    assert out[1:] == chat[len(chat) - len(out) + 1 :]  # a contiguous block of the newest turns
    assert len(out) < len(chat)
    check_fits(lm, count_chat_tokens(lm, out), 20)  # and generation accepts it


def test_truncate_chat_drop_middle_keeps_first_user(lm):
    chat = long_chat(12)
    out = W.truncate_chat(lm, chat, count_chat_tokens(lm, chat) // 2, keep_first_user=True)
    assert out[:2] == chat[:2] and out[-1] == chat[-1]
    assert chat[5] not in out  # something in the middle went
    assert count_chat_tokens(lm, out) <= count_chat_tokens(lm, chat) // 2


def test_truncate_chat_noop_when_it_fits(lm):
    chat = long_chat(2)
    assert W.truncate_chat(lm, chat, lm.context_length) == chat


def test_truncate_chat_clear_error_when_nothing_fits(lm):
    chat = long_chat(2)
    with pytest.raises(ContextWindowError, match="Shorten the last message"):
        W.truncate_chat(lm, chat, 20)
    assert issubclass(ContextWindowError, ValueError)
    with pytest.raises(ValueError, match="reserve"):
        W.truncate_chat(lm, chat, 100, reserve=-1)


# --- needle in a haystack ---------------------------------------------------------------------


NEEDLE_SEED = 1  # with this seed the model gets one fact wrong: both code paths are exercised


@pytest.fixture(scope="module")
def needle(lm):
    """One small needle test (two facts), shared by the tests that check it."""
    return W.needle_test(lm, 48, depths=(0.0, 1.0), seed=NEEDLE_SEED)


def test_needle_test_reused_cache_equals_one_full_pass(lm, needle):
    results = needle
    assert [r.depth for r in results] == [0.0, 1.0]
    assert all(0 <= r.prob <= 1 and r.correct == (r.guess == r.value) for r in results)
    # Recompute the last question's probability from scratch, no cache, in one forward pass.
    r = results[-1]
    haystack_ids = _rebuild_prompt(lm, r, seed=NEEDLE_SEED)
    answer = lm.tokenizer(" " + r.value, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([haystack_ids + answer]), use_cache=False).logits[
            0
        ]
    logp = torch.log_softmax(logits[len(haystack_ids) - 1 : -1].float(), -1)
    prob = float(logp[torch.arange(len(answer)), torch.tensor(answer)].sum().exp())
    assert prob == pytest.approx(r.prob, rel=1e-3, abs=1e-5)
    assert len(haystack_ids) == r.n_tokens


def test_needle_test_batched_guesses_equal_greedy_one_at_a_time(lm, needle):
    """All questions share one padded batch; each guess must be what plain greedy decoding writes."""
    for index, r in enumerate(needle):
        ids = _rebuild_prompt(lm, r, seed=NEEDLE_SEED, index=index)
        n_answer = len(lm.tokenizer(" " + r.value, add_special_tokens=False)["input_ids"])
        alone = generate(lm, ids, max_new_tokens=n_answer)  # one prompt, no padding: the reference
        assert lm.tokenizer.decode(alone.token_ids).strip() == r.guess
    assert {r.correct for r in needle} == {True, False}  # a right and a wrong answer both checked


def _rebuild_prompt(lm, r, seed, index=1):
    """The prompt needle_test built for result ``r``, rebuilt independently from its parts."""
    import random

    rng = random.Random(seed)
    keys = rng.sample(W.KEYS, 2)
    values = [str(rng.randint(1000, 9999)) for _ in range(2)]
    assert r.key == keys[index] and r.value == values[index]
    tok = lm.tokenizer

    def ids(t):
        return tok(t, add_special_tokens=False)["input_ids"]

    sents, n, i = [], 0, rng.randrange(len(W.FILLER))
    while n < 48:
        sents.append(ids(" " + W.FILLER[i % len(W.FILLER)]))
        n, i = n + len(sents[-1]), i + 1
    for d, k, v in sorted(zip((0.0, 1.0), keys, values, strict=True), reverse=True):
        sents.insert(round(d * len(sents)), ids(f" The code for the {k} door is {v}."))
    head, tail = chat_parts(lm)
    text_ids = ids(head + "Read this text carefully.\n\n") + [t for s in sents for t in s]
    q = ids(
        f"\n\nWhat is the code for the {r.key} door? Answer with the code only."
        + tail
        + f"The code for the {r.key} door is"
    )
    return text_ids + q


def test_needle_test_bad_depths(lm):
    with pytest.raises(ValueError, match="Depths"):
        W.needle_test(lm, 16, depths=(0.5, 1.5))
    with pytest.raises(ValueError, match="between 1 and"):
        W.needle_test(lm, 16, depths=())
