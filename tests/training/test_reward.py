"""llmlab.training.reward: Bradley–Terry, checked against scikit-learn's logistic regression."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from llmlab.training.reward import (
    LinearReward,
    bradley_terry_loss,
    fit_reward_model,
    pairwise_accuracy,
    preference_probability,
)


def synthetic_pairs(n: int = 200, d: int = 6, seed: int = 0):
    """Pairs whose true reward is a hidden linear function; labels drawn from Bradley–Terry."""
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=d)
    a, b = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    a_wins = rng.random(n) < preference_probability(a @ w_true, b @ w_true)
    chosen = np.where(a_wins[:, None], a, b).astype(np.float32)
    rejected = np.where(a_wins[:, None], b, a).astype(np.float32)
    return chosen, rejected, w_true


def test_bradley_terry_loss_values():
    equal = bradley_terry_loss(torch.zeros(3), torch.zeros(3))
    assert equal.item() == pytest.approx(math.log(2))
    assert bradley_terry_loss(torch.tensor([2.0]), torch.tensor([0.0])).item() == pytest.approx(
        -math.log(1 / (1 + math.exp(-2)))
    )
    with pytest.raises(ValueError, match="Shapes differ"):
        bradley_terry_loss(torch.zeros(2), torch.zeros(3))


def test_preference_probability_is_symmetric():
    assert preference_probability(1.0, 0.0) == pytest.approx(0.7311, abs=1e-4)
    assert preference_probability(0.3, 0.3) == pytest.approx(0.5)
    assert preference_probability(2.0, -1.0) + preference_probability(-1.0, 2.0) == pytest.approx(1)


def test_fit_equals_logistic_regression_on_differences():
    """Bradley–Terry with a linear head = logistic regression on f(chosen) - f(rejected), no
    intercept. With both orders of each pair as examples, sklearn minimises
    0.5 |w|^2 + C * 2 * sum(loss_i); ours mean(loss_i) + l2/2 |w|^2: equal when C = 1/(2 l2 n)."""
    from sklearn.linear_model import LogisticRegression

    chosen, rejected, _ = synthetic_pairs()
    l2 = 1e-2
    ours = fit_reward_model(chosen, rejected, l2=l2)
    diff = (chosen - rejected).astype(np.float64)
    x = np.vstack([diff, -diff])
    y = np.r_[np.ones(len(diff)), np.zeros(len(diff))]
    ref = LogisticRegression(
        C=1 / (2 * l2 * len(diff)), fit_intercept=False, tol=1e-10, max_iter=10_000
    )
    ref.fit(x, y)
    np.testing.assert_allclose(ours.weights, ref.coef_[0], rtol=1e-3, atol=1e-4)


def test_fit_recovers_the_ranking_and_scores_held_out_pairs():
    chosen, rejected, w_true = synthetic_pairs(n=400)
    model = fit_reward_model(chosen[:300], rejected[:300], l2=1e-3)
    cosine = model.weights @ w_true / np.linalg.norm(model.weights) / np.linalg.norm(w_true)
    assert cosine > 0.95  # the direction of the hidden reward is found
    held = pairwise_accuracy(model, chosen[300:], rejected[300:])
    assert set(np.unique(held)) <= {0.0, 1.0}
    assert held.mean() > 0.7  # labels are noisy (drawn from Bradley–Terry), so not 1.0
    assert model.train_loss < math.log(2)


def test_ties_count_half_and_bad_shapes_are_refused():
    flat = LinearReward(weights=np.zeros(3, dtype=np.float32), l2=0.0, train_loss=math.log(2))
    same = np.ones((4, 3), dtype=np.float32)
    assert pairwise_accuracy(flat, same, same).tolist() == [0.5] * 4
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        flat(np.ones((2, 5)))
    with pytest.raises(ValueError, match="same shape"):
        fit_reward_model(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="l2"):
        fit_reward_model(np.ones((3, 2)), np.zeros((3, 2)), l2=-1)
