"""llmlab.training.best_of_n: the exact best-of-k expectation against brute force; sampling."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from llmlab.runtime.models import LM
from llmlab.training.best_of_n import best_of_k, sample_answers
from tests.doubles import tiny_llama


def test_best_of_k_equals_every_subset_tried():
    rng = np.random.default_rng(0)
    rewards, values = rng.random(7), rng.random(7)
    for k in range(1, 8):
        subsets = itertools.combinations(range(7), k)
        brute = np.mean([values[max(s, key=lambda i: rewards[i])] for s in subsets])
        assert best_of_k(rewards, values, k) == pytest.approx(brute)
    assert best_of_k(rewards, values, 1) == pytest.approx(values.mean())  # no choice: the mean
    assert best_of_k(rewards, rewards, 7) == pytest.approx(rewards.max())
    with pytest.raises(ValueError, match="k must be"):
        best_of_k(rewards, values, 8)
    with pytest.raises(ValueError, match="same length"):
        best_of_k(rewards, values[:3], 2)


@pytest.fixture(scope="module")
def tiny(lm):
    """A 2-block random Llama with the real SmolLM2 tokenizer and chat template."""
    return LM(model=tiny_llama(lm.tokenizer), tokenizer=lm.tokenizer, name="tiny-llama")


def test_sample_answers_groups_n_per_prompt_and_is_seeded(tiny):
    prompts = ["Say hi.", "Name a colour."]
    first = sample_answers(tiny, prompts, n=3, max_new_tokens=5, seed=1)
    assert [len(group) for group in first] == [3, 3]
    assert all(len(g.token_ids) <= 5 for group in first for g in group)
    again = sample_answers(tiny, prompts, n=3, max_new_tokens=5, seed=1)
    assert [[g.text for g in group] for group in first] == [
        [g.text for g in group] for group in again
    ]
    texts = {g.text for group in first for g in group}
    assert len(texts) > 1  # sampled, not greedy: the rows differ
    with pytest.raises(ValueError, match="non-empty list"):
        sample_answers(tiny, "Say hi.", n=2)
