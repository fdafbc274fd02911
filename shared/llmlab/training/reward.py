"""A reward model: one number per answer, learned from comparisons (Bradley–Terry).

People cannot score an answer "7.3", but they can say which of two answers is better. The
Bradley–Terry model turns such comparisons into a score ``r`` per answer: the probability that
answer a is preferred over b is ``sigmoid(r(a) - r(b))``. Training maximises that probability
for every labelled pair, i.e. minimises ``-log sigmoid(r(chosen) - r(rejected))``.

Here the score is a *linear head on frozen features*: ``r(text) = w . features(text)`` with the
features from a model that stays as it is (MiniLM sentence embeddings in the lesson). Then
Bradley–Terry is exactly logistic regression on the feature *differences* ``f(chosen) -
f(rejected)`` with no intercept (``tests/training/test_reward.py`` checks this against
scikit-learn). The reward model behind a chat model is the same idea with the features being
the whole LM, fine-tuned too; what it can reward is limited to what its features can see.

Covers:
- ``bradley_terry_loss``, ``preference_probability``: the model, for tensors of scores.
- ``fit_reward_model``: the linear head, fitted by L-BFGS with an L2 penalty -> ``LinearReward``.
- ``pairwise_accuracy``: per held-out pair, did the chosen answer get the higher reward (ties 0.5).

Leaves out: fine-tuning the feature model itself, ties and graded labels, ensembles of reward
models, and reward normalisation across prompts (PPO pipelines whiten rewards per batch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """Mean ``-log sigmoid(r_chosen - r_rejected)``: 0.693 (log 2) when the rewards are equal.

    ``bradley_terry_loss(torch.tensor([2.0]), torch.tensor([0.0])) -> 0.127``
    """
    if r_chosen.shape != r_rejected.shape:
        raise ValueError(f"Shapes differ: {tuple(r_chosen.shape)} vs {tuple(r_rejected.shape)}.")
    return -F.logsigmoid(r_chosen - r_rejected).mean()


def preference_probability(r_a: float | np.ndarray, r_b: float | np.ndarray) -> np.ndarray:
    """P(a is preferred over b) under Bradley–Terry: ``sigmoid(r_a - r_b)``. ``(1, 0) -> 0.73``."""
    return 1.0 / (1.0 + np.exp(-(np.asarray(r_a, dtype=float) - np.asarray(r_b, dtype=float))))


@dataclass(frozen=True)
class LinearReward:
    """``reward(features) = features @ weights``: one score per row of an ``(n, d)`` array."""

    weights: np.ndarray  # (d,)
    l2: float  # the penalty it was fitted with
    train_loss: float  # mean Bradley–Terry loss on the training pairs (penalty left out)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.weights):
            raise ValueError(
                f"features must be (n, {len(self.weights)}) like the training features, "
                f"got shape {x.shape}."
            )
        return x @ self.weights  # (n,)


def _pair_arrays(chosen: np.ndarray, rejected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c, r = np.asarray(chosen, dtype=np.float32), np.asarray(rejected, dtype=np.float32)
    if c.ndim != 2 or c.shape != r.shape or len(c) == 0:
        raise ValueError(
            "chosen and rejected features must be two (n_pairs, d) arrays of the same shape "
            f"(row i of each = the two answers of pair i), got {c.shape} and {r.shape}."
        )
    return c, r


def fit_reward_model(
    chosen_features: np.ndarray,
    rejected_features: np.ndarray,
    *,
    l2: float = 1e-3,
    max_iter: int = 200,
) -> LinearReward:
    """Fit ``w`` minimising mean Bradley–Terry loss + ``l2 / 2 * |w|^2`` over the pairs.

    Row i of ``chosen_features`` and ``rejected_features`` (each ``(n, d)``) are the two answers
    of pair i. The problem is convex (logistic regression on differences): L-BFGS finds the
    optimum in a few dozen steps. Deterministic.
    """
    c, r = _pair_arrays(chosen_features, rejected_features)
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2}.")
    diff = torch.from_numpy(c - r).double()  # (n, d): the head sees only the difference
    w = torch.zeros(diff.shape[1], dtype=torch.float64, requires_grad=True)  # (d,)
    optimizer = torch.optim.LBFGS(
        [w], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = -F.logsigmoid(diff @ w).mean() + 0.5 * l2 * (w @ w)
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        train_loss = float(-F.logsigmoid(diff @ w).mean())
    return LinearReward(weights=w.detach().float().numpy(), l2=l2, train_loss=train_loss)


def pairwise_accuracy(
    reward: LinearReward, chosen_features: np.ndarray, rejected_features: np.ndarray
) -> np.ndarray:
    """Per pair: 1.0 if the chosen answer gets the higher reward, 0.0 if lower, 0.5 on a tie.
    The mean is the held-out pairwise accuracy (0.5 = chance)."""
    c, r = _pair_arrays(chosen_features, rejected_features)
    margin = reward(c) - reward(r)  # (n,)
    return np.where(margin > 0, 1.0, np.where(margin < 0, 0.0, 0.5))
