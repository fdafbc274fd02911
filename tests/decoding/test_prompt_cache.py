"""llmlab.decoding.prompt_cache: a reused prefix gives the same answer as reading the prompt whole
(``fast_generate`` with the cache = the plain loop ``generate`` without it)."""

from __future__ import annotations

import pytest

from llmlab.decoding.fast_generation import fast_generate
from llmlab.decoding.generation import generate
from llmlab.decoding.kv_cache import cache_length
from llmlab.decoding.prompt_cache import PromptCache, common_prefix

CHAT = [
    {"role": "system", "content": "You are a helpful assistant. Answer in one short sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]
LATER = CHAT + [
    {"role": "assistant", "content": "The capital of France is Paris."},
    {"role": "user", "content": "And of Italy?"},
]


def test_common_prefix():
    assert common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix([], [1]) == 0 and common_prefix([7, 8], [7, 8]) == 2


def test_bad_size_is_refused():
    with pytest.raises(ValueError, match="max_entries"):
        PromptCache(max_entries=0)


def test_a_later_turn_reuses_the_earlier_prompt_and_answers_the_same(lm):
    cache = PromptCache()
    first = fast_generate(lm, CHAT, chat=True, max_new_tokens=8, prompt_cache=cache)
    plain = generate(lm, LATER, chat=True, max_new_tokens=12)
    cached = fast_generate(lm, LATER, chat=True, max_new_tokens=12, prompt_cache=cache)
    shared = common_prefix(first.prompt_ids, cached.prompt_ids)
    assert cache.stats.reused_tokens >= shared - 1 > 20  # the whole first prompt, not re-read
    assert cached.token_ids == plain.token_ids  # same greedy answer as reading it whole
    for a, b in zip(cached.steps, plain.steps, strict=True):
        assert abs(a.prob - b.prob) < 1e-3
    # the stored entry still holds exactly its prompt: generation appended to new tensors
    stored_ids, layers = cache.entries[0]
    assert layers[0][0].shape[-2] == len(stored_ids) == len(first.prompt_ids)


def test_lookup_misses_unrelated_prompts_and_evicts_the_oldest(lm):
    cache = PromptCache(max_entries=1, min_reuse=1)
    chat_ids = fast_generate(lm, CHAT, chat=True, max_new_tokens=1, prompt_cache=cache).prompt_ids
    assert cache.lookup(lm.model, [5, 6, 7, 8]) == (0, None)  # nothing in common
    story = fast_generate(lm, "Once upon a time", max_new_tokens=1, prompt_cache=cache).prompt_ids
    assert [ids for ids, _ in cache.entries] == [story]  # one entry: the chat was evicted
    assert cache.lookup(lm.model, chat_ids)[0] == 0
    n, kv = cache.lookup(lm.model, story + [11, 12])
    assert n == len(story) and cache_length(kv) == n
