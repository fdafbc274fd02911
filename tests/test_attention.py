"""Tests for llmlab.attention: the numpy formula against torch, the model's weights against
transformers and against a rebuild from the weight matrices, head scores, HTML, ablation, CLI."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmlab import attention as A

TEXT = "The cat sat on the mat. The cat sat on the"


@pytest.fixture(scope="module")
def text_weights(lm):
    ids = A.token_ids(lm, TEXT)
    tokens, weights = A.attention_weights(lm, ids)
    return ids, tokens, weights


# --- the formula ------------------------------------------------------------------------------


@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_matches_torch(causal):
    rng = np.random.default_rng(0)
    q, k, v = rng.normal(size=(3, 2, 3, 6, 8))  # (B, H, T, d) each
    mask = A.causal_mask(6) if causal else None
    out, w = A.scaled_dot_product_attention(q, k, v, mask)
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
    out, w = A.scaled_dot_product_attention(q, k, v)
    p = np.exp(2) / (np.exp(2) + 1)
    np.testing.assert_allclose(w, [[p, 1 - p]])
    np.testing.assert_allclose(out, [[10 * p + 20 * (1 - p)]])


def test_causal_mask():
    assert A.causal_mask(3).tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    with pytest.raises(ValueError, match="positive"):
        A.causal_mask(0)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_masked_softmax_rows_are_distributions(T, seed):
    scores = np.random.default_rng(seed).normal(scale=30, size=(T, T))
    w = A.softmax(np.where(A.causal_mask(T), scores, -np.inf))
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-12)
    assert np.all(w[~A.causal_mask(T)] == 0)


# --- the real model ---------------------------------------------------------------------------


def test_weights_shape_causal_and_normalised(lm, text_weights):
    ids, tokens, w = text_weights
    T = len(ids)
    assert w.shape == (30, 9, T, T) and w.dtype == np.float32
    assert len(tokens) == T and "".join(tokens) == TEXT
    assert np.all(w[..., ~A.causal_mask(T)] == 0), "attention to a future token"
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)


def test_weights_equal_transformers_output_attentions(lm, text_weights):
    ids, _, w = text_weights
    with torch.no_grad():
        out = lm.model(torch.tensor([ids]), output_attentions=True)
    for layer in (0, 14, 29):
        np.testing.assert_array_equal(w[layer], out.attentions[layer][0].numpy())


@pytest.mark.parametrize("layer", [0, 17, 29])
def test_attention_rebuilt_from_weights_equals_model(lm, text_weights, layer):
    ids, _, w = text_weights
    rebuilt = A.attention_from_weights(lm, ids, layer)  # (H, T, T)
    np.testing.assert_allclose(rebuilt, w[layer], atol=1e-5)


def test_rope_matches_transformers(lm):
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    x = torch.randn(1, 2, 7, 64, generator=torch.Generator().manual_seed(0))
    pos = torch.arange(7)[None]
    cos, sin = lm.model.model.rotary_emb(x, pos)
    ref, _ = apply_rotary_pos_emb(x, x, cos, sin)
    theta = lm.model.config.rope_parameters["rope_theta"]
    np.testing.assert_allclose(A.rope(x.numpy(), np.arange(7), theta), ref.numpy(), atol=1e-5)


def test_token_ids_errors(lm):
    with pytest.raises(ValueError, match="empty"):
        A.token_ids(lm, "")
    with pytest.raises(ValueError, match="context"):
        A.token_ids(lm, [1] * (lm.context_length + 1))
    with pytest.raises(ValueError, match="max_tokens=4"):
        A.attention_weights(lm, TEXT, max_tokens=4)


# --- head scores ------------------------------------------------------------------------------


def _synthetic(T: int, ids: list[int]) -> np.ndarray:
    """Layer 0: head 0 previous-token, head 1 first-token, head 2 induction, head 3 uniform."""
    w = np.zeros((1, 4, T, T))
    w[0, 0, 0, 0] = 1
    for i in range(1, T):
        w[0, 0, i, i - 1] = 1
    w[0, 1, :, 0] = 1
    w[0, 2] = w[0, 0]  # where there is no earlier copy, look at the previous token
    for i, j in A.induction_targets(ids):
        w[0, 2, i] = 0
        w[0, 2, i, j] = 1
    w[0, 3] = A.causal_mask(T) / A.causal_mask(T).sum(-1, keepdims=True)
    return w


def test_head_scores_find_known_patterns():
    ids = [7, 8, 9, 10, 11, 7, 8, 9, 10, 11]
    assert A.induction_targets(ids) == [(5, 1), (6, 2), (7, 3), (8, 4), (9, 5)]
    s = A.head_scores(_synthetic(len(ids), ids), ids)
    assert s.top("previous_token", 1)[0][:2] == (0, 0) and s.previous_token[0, 0] == 1
    assert s.top("first_token", 1)[0][:2] == (0, 1) and s.first_token[0, 1] == 1
    assert s.top("induction", 1)[0][:2] == (0, 2) and s.induction[0, 2] == 1
    assert s.induction[0, 0] == 0 and s.previous_token[0, 2] < 1
    assert np.isclose(s.previous_token[0, 3], np.mean([1 / (i + 1) for i in range(2, 10)]))
    assert "induction 1.00" in s.label(0, 2)


def test_head_scores_without_repeats_and_bad_input():
    ids = [1, 2, 3]
    s = A.head_scores(_synthetic(3, ids), ids)
    assert np.all(np.isnan(s.induction)) and s.top("induction") == []
    with pytest.raises(ValueError, match="kind"):
        s.top("sink")
    with pytest.raises(ValueError, match="2 tokens but the weights cover 3"):
        A.head_scores(_synthetic(3, ids), [1, 2])
    with pytest.raises(ValueError, match="at least 3 tokens"):
        A.head_scores(_synthetic(2, [1, 2]), [1, 2])


def test_real_model_has_induction_heads(lm):
    ids = A.repeated_random_ids(lm, 20, seed=1)
    assert ids[:20] == ids[20:] and len(set(ids[:20])) == 20
    _, w = A.attention_weights(lm, ids)
    s = A.head_scores(w, ids)
    best = s.top("induction", 1)[0]
    assert best[2] > 0.5, best  # measured ~0.85 for L18 H6
    assert np.nanmedian(s.induction) < 0.05


# --- HTML -------------------------------------------------------------------------------------


def test_render_html_is_self_contained(text_weights):
    ids, tokens, w = text_weights
    scores = A.head_scores(w, ids)
    page = A.render_html(tokens, w, scores=scores, title="t <x>")
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", page)
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
    assert "<link" not in page and "@import" not in page
    assert "t &lt;x&gt;" in page  # titles and tokens are escaped
    assert page.count('<td style="background') == len(ids) * (len(ids) + 1) // 2
    frag = A.render_html(tokens, w, 17, 4, full_page=False)
    assert not frag.startswith("<!DOCTYPE") and "L17 H4" in frag
    assert len(frag) < len(page) / 5  # one head instead of 270
    assert '<iframe srcdoc="&lt;!DOCTYPE html&gt;' in A.iframe(page)


def test_bad_layer_or_head_gives_clear_error(lm, text_weights):
    _, tokens, w = text_weights
    with pytest.raises(ValueError, match=r"layer 30 is out of range.*0\.\.29"):
        A.render_html(tokens, w, layer=30)
    with pytest.raises(ValueError, match=r"head 9 is out of range.*0\.\.8"):
        A.render_html(tokens, w, layer=0, head=9)
    with pytest.raises(ValueError, match=r"head -1 is out of range"):
        A.ablate_heads(lm, TEXT, (3, -1))
    with pytest.raises(ValueError, match=r"layer 99"):
        A.attention_from_weights(lm, TEXT, 99)
    with pytest.raises(ValueError, match="pass layer="):
        big = np.broadcast_to(np.float32(0), (30, 9, 400, 400))  # no memory used
        A.render_html(["x"] * 400, big)
    with pytest.raises(ValueError, match="integer"):
        A.check_layer_head(lm, 1.5)


# --- ablation ---------------------------------------------------------------------------------


def test_ablation_changes_output_and_restores(lm):
    o_proj = lm.model.model.layers[18].self_attn.o_proj
    base = A.next_token_distribution(lm, TEXT)
    with A.heads_ablated(lm, [(18, 6), (17, 3)]):
        assert len(o_proj._forward_pre_hooks) == 1
        ablated = A.next_token_distribution(lm, TEXT)
    assert len(o_proj._forward_pre_hooks) == 0
    assert 0.5 * np.abs(base - ablated).sum() > 1e-3
    np.testing.assert_array_equal(A.next_token_distribution(lm, TEXT), base)

    result = A.ablate_heads(lm, TEXT, (18, 6), k=3)
    assert result.heads == [(18, 6)] and 0 < result.total_variation <= 1
    assert result.top_before == " mat"
    assert abs(result.changes[0].change) >= abs(result.changes[-1].change)


def test_ablation_hook_removed_after_error(lm):
    o_proj = lm.model.model.layers[5].self_attn.o_proj
    with pytest.raises(RuntimeError), A.heads_ablated(lm, (5, 0)):
        raise RuntimeError("boom")
    assert len(o_proj._forward_pre_hooks) == 0


# --- CLI --------------------------------------------------------------------------------------


@pytest.fixture
def same_lm(lm, monkeypatch):
    """Let the CLI reuse the session's model instead of loading another copy."""
    monkeypatch.setattr("llmlab.models.load_lm", lambda name=None: lm)


def test_cli_writes_html(tmp_path, capsys, same_lm):
    out = tmp_path / "sub" / "attention.html"
    assert (
        A.cli(["one two three one two three", "--layer", "17", "--head", "4", "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "L17 H4" in printed and "top induction heads" in printed
    page = out.read_text(encoding="utf-8")
    assert '<table class="heat">' in page and "https://" not in page


def test_cli_short_text_without_out(capsys, same_lm):
    assert A.cli(["Hi", "--layer", "0", "--head", "0"]) == 0
    assert "at least 3 tokens" in capsys.readouterr().out


def test_cli_bad_index(capsys, same_lm):
    assert A.cli(["hello", "--layer", "30"]) == 2
    assert "0..29" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        A.cli(["hello", "--head", "2"])
