"""Best-of-n: align at answer time by sampling n answers and keeping the one a reward model likes.

No training at all: draw ``n`` answers to a prompt, score each with a reward model, return the
best. It is the simplest way to "optimise" a reward, and so the simplest place to watch reward
hacking: the reward of the kept answer rises with n by construction, and everything the reward
model happens to like besides what you meant (length, a phrase, a format) rises with it.

Covers:
- ``sample_answers``: n answers per prompt, every prompt's n rows drawn in one batch
  (``llmlab.decoding.batching.generate_batch``; the shared system prompt is read once).
- ``best_of_k``: the expected value of any property (the reward itself, length, correctness) of
  the answer best-of-k would keep, computed exactly from n >= k samples by averaging over every
  subset of k of them (no extra sampling: one set of n samples gives the whole curve k = 1..n).

Leaves out: rejection sampling to train on the kept answers (that is "RAFT"/expert iteration),
reward models that read token by token (process rewards), and ties between rewards (the order
among equal rewards is the order of the samples).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb
from typing import TYPE_CHECKING

import numpy as np

from llmlab.decoding.batching import generate_batch
from llmlab.decoding.generation import Generation

if TYPE_CHECKING:
    from llmlab.runtime.models import LM


def sample_answers(
    lm: LM,
    prompts: Sequence[str],
    n: int = 8,
    *,
    max_new_tokens: int = 48,
    temperature: float = 1.0,
    top_k: int | None = 50,
    seed: int = 0,
) -> list[list[Generation]]:
    """``n`` sampled answers to each prompt (a user message, read through the chat template),
    all ``len(prompts) * n`` rows drawn as one batch: ``[[Generation, ...] * n] * len(prompts)``.

    ``top_k`` (not top-p) keeps sampling cheap in a big batch: top-p sorts the whole vocabulary
    for every row at every step, top-k only picks the k largest."""
    if isinstance(prompts, str) or not prompts:
        raise ValueError("prompts must be a non-empty list of user messages.")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}.")
    rows = [[{"role": "user", "content": p}] for p in prompts for _ in range(n)]
    out = generate_batch(
        lm,
        rows,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        seed=seed,
        chat=True,
    )
    return [out[i * n : (i + 1) * n] for i in range(len(prompts))]


def best_of_k(rewards: Sequence[float], values: Sequence[float], k: int) -> float:
    """Expected ``values`` of the answer best-of-k keeps (highest reward among k answers drawn
    from the n given, without replacement), exactly: the answer with j answers below it in
    reward is the best of a random k-subset with probability C(j, k-1) / C(n, k).

    ``best_of_k([0.1, 0.9, 0.5], [10, 30, 20], 1) -> 20.0`` (the mean: one draw, nothing to choose);
    ``best_of_k([0.1, 0.9, 0.5], [10, 30, 20], 3) -> 30.0`` (always the highest reward's answer).
    """
    r, v = np.asarray(rewards, dtype=float), np.asarray(values, dtype=float)
    n = len(r)
    if r.ndim != 1 or r.shape != v.shape or n == 0:
        raise ValueError(
            "rewards and values must be two flat lists of the same length (one per answer)."
        )
    if not isinstance(k, int | np.integer) or not 1 <= k <= n:
        raise ValueError(
            f"k must be a whole number between 1 and {n} (the answers given), got {k!r}."
        )
    order = np.argsort(r, kind="stable")  # ascending reward: position j has j answers below it
    weights = np.array([comb(j, k - 1) for j in range(n)], dtype=float) / comb(n, k)  # (n,)
    return float(weights @ v[order])
