"""Tests for llmlab.internals.attention: the numpy formula against torch, the model's weights against
transformers and against a rebuild from the weight matrices, and the layer/head checks.
(Head scores and ablation: test_heads.py; the page, plots and CLI: test_attention_views.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmlab.internals import attention
from llmlab.runtime.models import eager_attention
from llmlab.runtime.threads import use_threads

TEXT = "The cat sat on the mat. The cat sat on the"  # 12 tokens: one cheap forward pass


@pytest.fixture(scope="module")
def text_weights(lm):
    ids = attention.token_ids(lm, TEXT)
    tokens, weights = attention.attention_weights(lm, ids)
    return ids, tokens, weights


# --- the formula ------------------------------------------------------------------------------


@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_matches_torch(causal):
    rng = np.random.default_rng(0)
    q, k, v = rng.normal(size=(3, 2, 3, 6, 8))  # (B, H, T, d) each
    mask = attention.causal_mask(6) if causal else None
    out, w = attention.scaled_dot_product_attention(q, k, v, mask)
    ref = torch.nn.functional.scaled_dot_product_attention(
        *(torch.tensor(x) for x in (q, k, v)), is_causal=causal
    )
    np.testing.assert_allclose(out, ref.numpy(), atol=1e-12)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-12)


def test_sdpa_textbook_example():
    # two keys, query aligned with the first: weights follow softmax([2, 0] / sqrt(2))
    q = np.array([[np.sqrt(2), np.sqrt(2)]])
    k = np.array([[1.0, 1.0], [1.0, -1.0]])
    v = np.array([[10.0], [20.0]])
    out, w = attention.scaled_dot_product_attention(q, k, v)
    p = np.exp(2) / (np.exp(2) + 1)
    np.testing.assert_allclose(w, [[p, 1 - p]])
    np.testing.assert_allclose(out, [[10 * p + 20 * (1 - p)]])


def test_causal_mask():
    assert attention.causal_mask(3).tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    with pytest.raises(ValueError, match="positive"):
        attention.causal_mask(0)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_masked_softmax_rows_are_distributions(T, seed):
    scores = np.random.default_rng(seed).normal(scale=30, size=(T, T))
    w = attention.softmax(np.where(attention.causal_mask(T), scores, -np.inf))
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-12)
    assert np.all(w[~attention.causal_mask(T)] == 0)


# --- the real model ---------------------------------------------------------------------------


def test_weights_shape_causal_and_normalised(lm, text_weights):
    ids, tokens, w = text_weights
    T = len(ids)
    assert w.shape == (30, 9, T, T) and w.dtype == np.float32
    assert len(tokens) == T and "".join(tokens) == TEXT
    assert np.all(w[..., ~attention.causal_mask(T)] == 0), "attention to a future token"
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)


def test_weights_equal_transformers_output_attentions(lm, text_weights):
    ids, _, w = text_weights
    with torch.no_grad(), use_threads(len(ids)), eager_attention(lm):
        out = lm.model(torch.tensor([ids]), output_attentions=True)
    for layer in (0, 14, 29):
        np.testing.assert_array_equal(w[layer], out.attentions[layer][0].numpy())


@pytest.mark.parametrize("layer", [0, 17, 29])
def test_attention_rebuilt_from_weights_equals_model(lm, text_weights, layer):
    ids, _, w = text_weights
    rebuilt = attention.attention_from_weights(lm, ids, layer)  # (H, T, T)
    np.testing.assert_allclose(rebuilt, w[layer], atol=1e-5)


def test_token_ids_errors(lm):
    for empty in ("", "  \n\t "):
        with pytest.raises(ValueError, match="empty"):
            attention.token_ids(lm, empty)
    with pytest.raises(ValueError, match="context"):
        attention.token_ids(lm, [1] * (lm.context_length + 1))
    with pytest.raises(ValueError, match="max_tokens=4"):
        attention.attention_weights(lm, TEXT, max_tokens=4)


def test_queries_keys_shapes_and_gqa(lm, text_weights):
    ids, _, _ = text_weights
    q, k = attention.queries_keys(lm, attention.layer_input(lm, ids, 3), 3)
    assert q.shape == (9, len(ids), 64) and k.shape == (3, len(ids), 64)


def test_check_layer_head_names_the_valid_range(lm, text_weights):
    _, _, w = text_weights
    with pytest.raises(ValueError, match=r"layer 30 is out of range.*0\.\.29"):
        attention.check_layer_head(lm, 30)
    with pytest.raises(ValueError, match=r"head 9 is out of range.*0\.\.8"):
        attention.check_layer_head(w, 0, 9)
    with pytest.raises(ValueError, match="integer"):
        attention.check_layer_head(lm, 1.5)
    with pytest.raises(ValueError, match=r"layer 99"):
        attention.attention_from_weights(lm, TEXT, 99)
    attention.check_layer_head(lm, 29, 8)  # the last ones exist
