"""Tests for llmlab.decoding.kv_cache: the byte formula against real caches, the shims, cache prefixes."""

from __future__ import annotations

import pytest
import torch

from llmlab.decoding import kv_cache as K
from llmlab.decoding.chat_template import chat_token_ids
from llmlab.runtime.architecture import TransformerConfig, config_of
from llmlab.runtime.threads import use_threads

CHAT = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is 2 + 2?"},
]


def test_kv_cache_formula_matches_config(lm):
    assert K.kv_cache_bytes(lm, 1) == 2 * 30 * 3 * 64 * 4 == 46080
    assert K.kv_cache_bytes(lm.model.config, 10, bytes_per_value=2) == 10 * 46080 // 2
    assert K.kv_cache_bytes(config_of(lm), 3, batch_size=2) == 6 * 46080
    with pytest.raises(ValueError):
        K.kv_cache_bytes(lm, -1)


def test_kv_cache_bytes_of_a_typed_in_config():
    llama3_8b = TransformerConfig(
        n_layer=32,
        n_head=32,
        n_kv_head=8,
        n_embd=4096,
        head_dim=128,
        intermediate_size=14336,
        vocab_size=128256,
        rope_theta=5e5,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        context_length=8192,
    )
    assert K.kv_cache_bytes(llama3_8b, 8192, bytes_per_value=2) == 2**30  # 1 GiB


def test_formula_matches_real_cache_and_grows_one_token_at_a_time(lm):
    ids = chat_token_ids(lm, CHAT)
    out, cache = K.cached_forward(lm.model, torch.tensor([ids]))
    kvs = K.cache_tensors(cache)
    assert len(kvs) == 30 and K.cache_length(cache) == len(ids)
    assert tuple(kvs[0][0].shape) == (1, 3, len(ids), 64)  # (B, kv_heads, T, head_dim)
    assert K.cache_tensor_bytes(cache) == K.kv_cache_bytes(lm, len(ids))
    _, cache = K.cached_forward(lm.model, torch.tensor([[ids[-1]]]), cache)
    assert K.cache_tensor_bytes(cache) == K.kv_cache_bytes(lm, len(ids) + 1)


def test_cached_forward_equals_one_full_pass(lm):
    ids = chat_token_ids(lm, CHAT)
    with torch.inference_mode(), use_threads(len(ids)):
        full = lm.model(input_ids=torch.tensor([ids]), use_cache=False).logits[0, -1]  # (V,)
    _, cache = K.cached_forward(lm.model, torch.tensor([ids[:-3]]))
    prefix = K.make_cache(lm.model, K.cache_tensors(cache), n_tokens=len(ids) - 5)
    assert K.cache_length(prefix) == len(ids) - 5  # back to a shorter prefix ...
    out, _ = K.cached_forward(lm.model, torch.tensor([ids[-5:]]), prefix)
    assert torch.allclose(out.logits[0, -1], full, atol=1e-4)  # ... and on from there


def test_random_cache_has_the_shape_and_cost_of_a_real_one(lm):
    cache = K.random_cache(lm.model, 20, batch_size=2)
    assert K.cache_length(cache) == 20
    assert K.cache_tensor_bytes(cache) == K.kv_cache_bytes(lm, 20, batch_size=2)
    assert K.cache_kwarg(lm.model) in {"cache", "past_key_values"}
    with pytest.raises(ValueError, match="n_tokens"):
        K.random_cache(lm.model, 0)


def test_select_rows_keeps_those_rows_exactly(lm):
    cache = K.random_cache(lm.model, 5, batch_size=3)
    kept = K.select_rows(lm.model, cache, [2, 0])
    for (k, v), (k2, v2) in zip(K.cache_tensors(cache), K.cache_tensors(kept), strict=True):
        assert torch.equal(k2, k[[2, 0]]) and torch.equal(v2, v[[2, 0]])  # (2, kv_heads, 5, hs)
