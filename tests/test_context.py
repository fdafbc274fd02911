"""Tests for llmlab.context: chat token counts, KV-cache memory, truncation, the needle test."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from llmlab import context as C
from llmlab.generation import ContextWindowError, cache_from_output, cache_kwarg, check_fits

CHATS = [
    [{"role": "user", "content": "hi"}],
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3 + 3? Explain, with émojis 🙂."},
    ],
]


def long_chat(n_turns: int = 12) -> list[dict]:
    msgs = [{"role": "system", "content": "You are a helpful travel agent."}]
    for i in range(n_turns):
        msgs.append({"role": "user", "content": f"Question {i}: tell me about city number {i}."})
        msgs.append(
            {"role": "assistant", "content": f"City {i} has a river, a museum and {i} parks."}
        )
    msgs.append({"role": "user", "content": "Which city had the most parks?"})
    return msgs


# --- counting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("chat", CHATS)
@pytest.mark.parametrize("gen_prompt", [True, False])
def test_count_matches_apply_chat_template(lm, chat, gen_prompt):
    ref = lm.tokenizer.apply_chat_template(chat, tokenize=True, add_generation_prompt=gen_prompt)
    ref_ids = ref["input_ids"] if hasattr(ref, "keys") else ref
    assert C.chat_token_ids(lm, chat, gen_prompt) == list(ref_ids)
    assert C.count_chat_tokens(lm, chat, gen_prompt) == len(ref_ids)


def test_template_overhead_is_real(lm):
    # "hi" is one token, but the chat costs many more: default system prompt + role markers.
    assert len(lm.tokenizer("hi", add_special_tokens=False)["input_ids"]) == 1
    assert C.count_chat_tokens(lm, CHATS[0]) == 31


def test_message_costs_add_up(lm):
    chat = long_chat(3)
    costs = C.message_token_costs(lm, chat)
    assert len(costs) == len(chat) and all(c > 0 for c in costs)
    assert sum(costs) == C.count_chat_tokens(lm, chat, add_generation_prompt=False)


@pytest.mark.parametrize("bad", [[], [{"content": "no role"}], ["just text"]])
def test_bad_chats_are_rejected(lm, bad):
    with pytest.raises(ValueError, match="message|empty"):
        C.count_chat_tokens(lm, bad)


# --- memory -----------------------------------------------------------------------------------


def test_kv_cache_formula_matches_config(lm):
    cfg = lm.model.config
    assert C.kv_shape(cfg) == (30, 3, 64)
    assert C.kv_cache_bytes(cfg, 1) == 2 * 30 * 3 * 64 * 4 == 46080
    assert C.kv_cache_bytes(cfg, 10, bytes_per_value=2) == 10 * 46080 // 2
    with pytest.raises(ValueError):
        C.kv_cache_bytes(cfg, -1)


def test_kv_cache_formula_matches_real_cache(lm):
    ids = C.chat_token_ids(lm, CHATS[1])
    with torch.inference_mode():
        out = lm.model(input_ids=torch.tensor([ids]), use_cache=True)
    cache = cache_from_output(out)
    kvs = C.cache_tensors(cache)
    assert len(kvs) == lm.model.config.num_hidden_layers
    assert tuple(kvs[0][0].shape) == (1, 3, len(ids), 64)  # (B, kv_heads, T, head_dim)
    assert C.cache_tensor_bytes(cache) == C.kv_cache_bytes(lm.model.config, len(ids))
    # one more token adds exactly one token's worth
    with torch.inference_mode():
        out = lm.model(
            input_ids=torch.tensor([[ids[-1]]]), use_cache=True, **{cache_kwarg(lm.model): cache}
        )
    assert C.cache_tensor_bytes(cache_from_output(out)) == C.kv_cache_bytes(lm.model.config, len(ids) + 1)


def test_random_cache_has_real_shape_and_timing_runs(lm):
    cache = C.random_cache(lm.model.config, 20)
    assert C.cache_tensor_bytes(cache) == C.kv_cache_bytes(lm.model.config, 20)
    assert 0 < C.decode_seconds(lm, 16, n_steps=1) < 30
    assert 0 < C.prefill_seconds(lm, 8) < 30


# --- truncation -------------------------------------------------------------------------------


def test_truncate_tokens_examples():
    assert C.truncate_tokens([1, 2, 3, 4, 5], 4, "both") == [1, 2, 4, 5]
    assert C.truncate_tokens([1, 2, 3, 4, 5], 2, "end") == [4, 5]
    assert C.truncate_tokens([1, 2, 3, 4, 5], 2, "start") == [1, 2]
    assert C.truncate_tokens([1, 2], 5) == [1, 2]
    with pytest.raises(ValueError, match="keep"):
        C.truncate_tokens([1], 1, "middle")
    with pytest.raises(ValueError, match="max_tokens"):
        C.truncate_tokens([1], 0)


@given(
    st.lists(st.integers(0, 9), max_size=40),
    st.integers(1, 30),
    st.sampled_from(["end", "start", "both"]),
)
def test_truncate_tokens_properties(ids, n, keep):
    out = C.truncate_tokens(ids, n, keep)
    assert len(out) == min(len(ids), n)
    if len(ids) > n:
        if keep != "end":
            assert out[0] == ids[0]
        if keep == "end" or (keep == "both" and n >= 2):
            assert out[-1] == ids[-1]


def test_truncate_chat_keeps_system_and_recent_and_fits(lm):
    chat = long_chat(12)
    full = C.count_chat_tokens(lm, chat)
    budget = full // 3
    out = C.truncate_chat(lm, chat, budget, reserve=20)
    assert C.count_chat_tokens(lm, out) + 20 <= budget
    assert out[0] == chat[0]  # system kept
    assert out[-1] == chat[-1]  # the question kept
    assert out[1]["role"] == "user"  # history never opens with the assistant
    assert out[1:] == chat[len(chat) - len(out) + 1 :]  # a contiguous block of the newest turns
    assert len(out) < len(chat)
    check_fits(lm, C.count_chat_tokens(lm, out), 20)  # and generation accepts it


def test_truncate_chat_drop_middle_keeps_first_user(lm):
    chat = long_chat(12)
    out = C.truncate_chat(lm, chat, C.count_chat_tokens(lm, chat) // 2, keep_first_user=True)
    assert out[:2] == chat[:2] and out[-1] == chat[-1]
    assert chat[5] not in out  # something in the middle went
    assert C.count_chat_tokens(lm, out) <= C.count_chat_tokens(lm, chat) // 2


def test_truncate_chat_noop_when_it_fits(lm):
    chat = long_chat(2)
    assert C.truncate_chat(lm, chat, lm.context_length) == chat


def test_truncate_chat_clear_error_when_nothing_fits(lm):
    chat = long_chat(2)
    with pytest.raises(ContextWindowError, match="Shorten the last message"):
        C.truncate_chat(lm, chat, 20)
    assert issubclass(ContextWindowError, ValueError)
    with pytest.raises(ValueError, match="reserve"):
        C.truncate_chat(lm, chat, 100, reserve=-1)


# --- needle in a haystack ---------------------------------------------------------------------


def test_needle_test_reused_cache_equals_one_full_pass(lm):
    results = C.needle_test(lm, 48, depths=(0.0, 1.0), seed=3)
    assert [r.depth for r in results] == [0.0, 1.0]
    assert all(0 <= r.prob <= 1 and r.correct == (r.guess == r.value) for r in results)
    # Recompute the last question's probability from scratch, no cache, in one forward pass.
    r = results[-1]
    haystack_ids = _rebuild_prompt(lm, r, seed=3)
    answer = lm.tokenizer(" " + r.value, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([haystack_ids + answer]), use_cache=False).logits[
            0
        ]
    logp = torch.log_softmax(logits[len(haystack_ids) - 1 : -1].float(), -1)
    prob = float(logp[torch.arange(len(answer)), torch.tensor(answer)].sum().exp())
    assert prob == pytest.approx(r.prob, rel=1e-3, abs=1e-5)
    assert len(haystack_ids) == r.n_tokens


def _rebuild_prompt(lm, r, seed):
    """The prompt needle_test built for result ``r``, rebuilt independently from its parts."""
    import random

    rng = random.Random(seed)
    keys = rng.sample(C.KEYS, 2)
    values = [str(rng.randint(1000, 9999)) for _ in range(2)]
    assert r.key == keys[1] and r.value == values[1]
    tok = lm.tokenizer

    def ids(t):
        return tok(t, add_special_tokens=False)["input_ids"]

    sents, n, i = [], 0, rng.randrange(len(C.FILLER))
    while n < 48:
        sents.append(ids(" " + C.FILLER[i % len(C.FILLER)]))
        n, i = n + len(sents[-1]), i + 1
    for d, k, v in sorted(zip((0.0, 1.0), keys, values, strict=True), reverse=True):
        sents.insert(round(d * len(sents)), ids(f" The code for the {k} door is {v}."))
    head, tail = C._chat_parts(lm)
    text_ids = ids(head + "Read this text carefully.\n\n") + [t for s in sents for t in s]
    q = ids(
        f"\n\nWhat is the code for the {r.key} door? Answer with the code only."
        + tail
        + f"The code for the {r.key} door is"
    )
    return text_ids + q


def test_needle_test_bad_depths(lm):
    with pytest.raises(ValueError, match="Depths"):
        C.needle_test(lm, 16, depths=(0.5, 1.5))
    with pytest.raises(ValueError, match="between 1 and"):
        C.needle_test(lm, 16, depths=())
