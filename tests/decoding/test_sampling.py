"""Tests for llmlab.decoding.sampling: the knobs on one distribution, by examples and properties."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmlab.decoding import sampling as S

# --- the knobs, on one distribution -----------------------------------------------------------


def test_apply_temperature_examples_and_entropy():
    logits = torch.tensor([2.0, 1.0, 0.0])
    assert S.apply_temperature(logits, 1.0).tolist() == pytest.approx(
        [0.665, 0.245, 0.090], abs=1e-3
    )
    assert S.apply_temperature(logits, 0.5).tolist() == pytest.approx(
        [0.867, 0.117, 0.016], abs=1e-3
    )
    assert S.apply_temperature(logits, 0).tolist() == [1.0, 0.0, 0.0]
    entropies = [S.entropy(S.apply_temperature(logits, t)) for t in (0.1, 0.5, 1, 2, 10)]
    assert entropies == sorted(entropies)
    assert entropies[-1] < math.log2(3)


def test_entropy_in_bits():
    assert S.entropy([0.5, 0.5]) == pytest.approx(1.0)
    assert S.entropy([0.25] * 4) == pytest.approx(2.0)
    assert S.entropy([1.0, 0.0, 0.0]) == 0.0


def test_docstring_examples_of_filters():
    probs = [0.5, 0.3, 0.2]
    assert S.filter_top_k(probs, 2).tolist() == [True, True, False]
    assert S.filter_top_p(probs, 0.7).tolist() == [True, True, False]
    assert S.filter_top_p(probs, 0.8).tolist() == [True, True, False]  # 0.5 + 0.3 reaches 0.8
    assert S.filter_top_p(probs, 0.81).tolist() == [True, True, True]
    assert S.filter_min_p(probs, 0.5).tolist() == [True, True, False]
    assert S.filter_min_p(probs, 0.0).tolist() == [True, True, True]
    assert S.filter_top_p(probs, 1.0).all()
    assert S.renormalize(probs, [True, True, False]).tolist() == pytest.approx([0.625, 0.375, 0])


distributions = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40).filter(
    lambda xs: sum(xs) > 1e-3
)


@settings(max_examples=200, deadline=None)
@given(weights=distributions, p=st.floats(0.01, 1.0))
def test_top_p_keeps_the_smallest_set_reaching_p(weights, p):
    probs = torch.tensor(weights, dtype=torch.float32)
    probs = probs / probs.sum()
    keep = S.filter_top_p(probs, p)
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
    keep = S.filter_top_k(probs, k)
    assert int(keep.sum()) == min(k, len(weights))
    if (~keep).any():
        assert probs[keep].min() >= probs[~keep].max()


@settings(max_examples=100, deadline=None)
@given(weights=distributions, min_p=st.floats(0.0, 0.99))
def test_min_p_threshold_is_relative_to_the_top_token(weights, min_p):
    probs = torch.tensor(weights, dtype=torch.float32)
    probs = probs / probs.sum()
    keep = S.filter_min_p(probs, min_p)
    threshold = min_p * probs.max()
    assert keep[probs.argmax()]
    assert (probs[keep] >= threshold).all()
    assert (probs[~keep] < threshold).all()


def test_sampling_distribution_cuts_and_renormalizes():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    dist = S.sampling_distribution(logits, 1.0, top_k=3, top_p=0.7)
    assert dist.tolist() == pytest.approx([0.625, 0.375, 0.0, 0.0], abs=1e-6)
    dist = S.sampling_distribution(logits, 1.0, min_p=0.2)  # threshold 0.1
    assert dist.tolist() == pytest.approx([0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0], abs=1e-6)


def test_penalties_push_used_tokens_down():
    logits = torch.tensor([2.0, -1.0, 0.5, 3.0])
    out = S.apply_penalties(logits, [0, 1], [], repetition_penalty=2.0)
    assert out.tolist() == [1.0, -2.0, 0.5, 3.0]
    out = S.apply_penalties(logits, [], [3, 3, 2], frequency_penalty=0.5, presence_penalty=1.0)
    assert out.tolist() == [2.0, -1.0, -1.0, 1.0]
    assert logits.tolist() == [2.0, -1.0, 0.5, 3.0]  # input untouched


def test_filter_functions_validate_too():
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
        S.filter_top_p([0.5, 0.5], 0)
    with pytest.raises(ValueError, match="top_k"):
        S.filter_top_k([0.5, 0.5], -1)
    with pytest.raises(ValueError, match="min_p"):
        S.filter_min_p([0.5, 0.5], 1)
    with pytest.raises(ValueError, match="temperature"):
        S.apply_temperature([1.0, 2.0], -1)


def test_top_k_zero_is_off_everywhere():
    probs = [0.5, 0.3, 0.2]
    assert S.filter_top_k(probs, 0).all()
    logits = torch.log(torch.tensor(probs))
    assert torch.allclose(S.sampling_distribution(logits, 1.0, top_k=0), torch.tensor(probs))
    S.check_settings(temperature=1.0, top_k=0)  # valid
    with pytest.raises(ValueError, match="top_k must be an integer >= 0"):
        S.check_settings(top_k=-1)


def test_a_batch_of_distributions_is_filtered_row_by_row():
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(0))  # (B, V)
    kwargs = dict(temperature=0.8, top_k=20, top_p=0.9, min_p=0.05)
    batch = S.sampling_distribution(logits, **kwargs)  # (B, V)
    for row in range(4):
        assert torch.allclose(batch[row], S.sampling_distribution(logits[row], **kwargs))
    assert torch.allclose(batch.sum(-1), torch.ones(4))
