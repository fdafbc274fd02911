"""Tests for llmlab.internals.heads: head scores on synthetic maps with known answers and on the real
model (induction heads exist), choosing heads worth seeing, strongest links, ablation."""

from __future__ import annotations

import numpy as np
import pytest

from llmlab.internals import heads
from llmlab.internals.attention import attention_weights, causal_mask, token_ids

TEXT = "The cat sat on the mat. The cat sat on the"


# --- head scores ------------------------------------------------------------------------------


def _synthetic(T: int, ids: list[int]) -> np.ndarray:
    """Layer 0: head 0 previous-token, head 1 first-token, head 2 induction, head 3 uniform."""
    w = np.zeros((1, 4, T, T))
    w[0, 0, 0, 0] = 1
    for i in range(1, T):
        w[0, 0, i, i - 1] = 1
    w[0, 1, :, 0] = 1
    w[0, 2] = w[0, 0]  # where there is no earlier copy, look at the previous token
    for i, j in heads.induction_targets(ids):
        w[0, 2, i] = 0
        w[0, 2, i, j] = 1
    w[0, 3] = causal_mask(T) / causal_mask(T).sum(-1, keepdims=True)
    return w


def test_head_scores_find_known_patterns():
    ids = [7, 8, 9, 10, 11, 7, 8, 9, 10, 11]
    assert heads.induction_targets(ids) == [(5, 1), (6, 2), (7, 3), (8, 4), (9, 5)]
    s = heads.head_scores(_synthetic(len(ids), ids), ids)
    assert s.top("previous_token", 1)[0][:2] == (0, 0) and s.previous_token[0, 0] == 1
    assert s.top("first_token", 1)[0][:2] == (0, 1) and s.first_token[0, 1] == 1
    assert s.top("induction", 1)[0][:2] == (0, 2) and s.induction[0, 2] == 1
    assert s.induction[0, 0] == 0 and s.previous_token[0, 2] < 1
    assert np.isclose(s.previous_token[0, 3], np.mean([1 / (i + 1) for i in range(2, 10)]))
    assert "induction 1.00" in s.label(0, 2)


def test_head_scores_without_repeats_and_bad_input():
    ids = [1, 2, 3]
    s = heads.head_scores(_synthetic(3, ids), ids)
    assert np.all(np.isnan(s.induction)) and s.top("induction") == []
    with pytest.raises(ValueError, match="kind"):
        s.top("sink")
    with pytest.raises(ValueError, match="2 tokens but the weights cover 3"):
        heads.head_scores(_synthetic(3, ids), [1, 2])
    with pytest.raises(ValueError, match="at least 3 tokens"):
        heads.head_scores(_synthetic(2, [1, 2]), [1, 2])


def test_strongest_links_textbook_and_skip_first():
    w = np.array([[1.0, 0, 0], [0.6, 0.4, 0], [0.5, 0.3, 0.2]])
    assert heads.strongest_links(w) == [heads.Link(1, 1, 0.4), heads.Link(2, 1, 0.3)]
    assert [k.key for k in heads.strongest_links(w, skip_first=False)] == [0, 0, 0]
    with pytest.raises(ValueError, match=r"\(T, T\)"):
        heads.strongest_links(np.zeros((2, 3)))


def test_content_scores_find_a_head_that_looks_back_at_a_word():
    T = 8
    w = np.zeros((1, 3, T, T))
    w[0, 0] = _synthetic(T, list(range(T)))[0, 0]  # previous-token head
    w[0, 1, :, 0] = 1  # sink
    w[0, 2] = w[0, 1]
    w[0, 2, 3:, 0], w[0, 2, 3:, 1] = 0.2, 0.8  # every later token looks back at token 1
    c = heads.content_scores(w)
    assert c.shape == (1, 3) and c[0, 0] == 0 and c[0, 1] == 0
    assert np.isclose(c[0, 2], 0.8)
    picks = heads.interesting_heads(w, list(range(T)))  # nothing repeats: no induction pick
    assert [(p.kind, p.head) for p in picks] == [("content", 2), ("previous_token", 0)]
    assert "0.80" in picks[0].why and heads.head_worth_seeing(w, list(range(T))).head == 2


@pytest.fixture(scope="module")
def probe(lm):
    """20 random tokens twice: the classic induction probe, run through the model once."""
    ids = heads.repeated_random_ids(lm, 20, seed=1)
    _, w = attention_weights(lm, ids)
    return ids, w


def test_real_model_has_induction_heads(lm, probe):
    ids, w = probe
    assert ids[:20] == ids[20:] and len(set(ids[:20])) == 20
    s = heads.head_scores(w, ids)
    best = s.top("induction", 1)[0]
    assert best[2] > 0.5, best  # a few heads copy...
    assert np.nanmedian(s.induction) < 0.05  # ...the typical head does not
    pick = heads.head_worth_seeing(w, ids)
    assert (pick.kind, pick.layer, pick.head) == ("induction", *best[:2])


def test_interesting_heads_on_prose_link_words(lm):
    ids = token_ids(lm, "The capital of France is Paris, and the capital of Italy is")
    _, w = attention_weights(lm, ids)
    picks = heads.interesting_heads(w, ids)
    kinds = [p.kind for p in picks]
    assert kinds[-1] == "previous_token" and "content" in kinds
    assert len({(p.layer, p.head) for p in picks}) == len(picks)
    prev = picks[-1]
    links = heads.strongest_links(w[prev.layer, prev.head])
    assert np.mean([k.key == k.query - 1 for k in links[1:]]) > 0.5  # it does look one back


# --- ablation ---------------------------------------------------------------------------------


def test_ablation_changes_output_and_restores(lm):
    o_proj = lm.model.model.layers[18].self_attn.o_proj
    base = heads.next_token_distribution(lm, TEXT)
    with heads.heads_ablated(lm, [(18, 6), (17, 3)]):
        assert len(o_proj._forward_pre_hooks) == 1
        ablated = heads.next_token_distribution(lm, TEXT)
    assert len(o_proj._forward_pre_hooks) == 0
    assert 0.5 * np.abs(base - ablated).sum() > 1e-3
    np.testing.assert_array_equal(heads.next_token_distribution(lm, TEXT), base)

    result = heads.ablate_heads(lm, TEXT, (18, 6), k=3)
    assert result.heads == [(18, 6)] and 0 < result.total_variation <= 1
    assert result.top_before == " mat"
    assert abs(result.changes[0].change) >= abs(result.changes[-1].change)


def test_ablation_hook_removed_after_error(lm):
    o_proj = lm.model.model.layers[5].self_attn.o_proj
    with pytest.raises(RuntimeError), heads.heads_ablated(lm, (5, 0)):
        raise RuntimeError("boom")
    assert len(o_proj._forward_pre_hooks) == 0


def test_ablating_a_missing_head_is_a_clear_error(lm):
    with pytest.raises(ValueError, match=r"head -1 is out of range"):
        heads.ablate_heads(lm, TEXT, (3, -1))
