"""llmlab.evaluation.baselines on hand-made items: ties split, the obvious picks."""

from __future__ import annotations

import numpy as np
import pytest

from llmlab.evaluation.baselines import (
    always_position,
    bm25_baseline,
    longest_option,
    random_baseline,
    similarity_baseline,
    tie_share,
)
from llmlab.evaluation.multiple_choice import MCItem

ITEMS = [
    MCItem(question="Which fruit is yellow?", choices=("banana", "red apple"), answer=0),
    MCItem(question="A large grey animal", choices=("cat", "elephant", "dog"), answer=1),
    MCItem(question="Capital of Italy", choices=("Rome, capital of Italy", "Paris"), answer=0),
    MCItem(question="Pick the last one", choices=("one", "two", "three", "four"), answer=3),
]


def test_tie_share():
    assert tie_share([1, 3, 3], 1) == 0.5
    assert tie_share([1, 3, 2], 0) == 0.0
    assert tie_share([2, 2, 2, 2], 3) == 0.25


def test_random_and_always_position():
    assert random_baseline(ITEMS).correct == [0.5, 1 / 3, 0.5, 0.25]
    assert always_position(ITEMS, 0).correct == [1.0, 0.0, 1.0, 0.0]
    assert always_position(ITEMS, 0).name == "always A"


def test_longest_option():
    # "red apple" (9) beats "banana" (6); "elephant"; the long Rome option; "three"/"four" tie? no:
    # "three" has 5 characters, "four" 4: three wins, so the last item is wrong
    assert longest_option(ITEMS).correct == [0.0, 1.0, 1.0, 0.0]


def test_bm25_picks_the_option_sharing_rare_words():
    result = bm25_baseline(ITEMS)
    assert result.correct[2] == 1.0  # "Italy", "capital" shared with the question
    assert result.correct[0] == 0.5  # no shared word: both options score 0, a tie


def test_similarity_uses_the_embedder():
    # a fake embedder: each text -> a unit vector from its first letter, so "A..." is near "a..."
    def embed(texts):
        v = np.zeros((len(texts), 26), dtype=np.float32)
        for i, t in enumerate(texts):
            v[i, (ord(t[0].lower()) - 97) % 26] = 1.0
        return v

    items = [MCItem(question="apple?", choices=("banana", "apricot"), answer=1)]
    assert similarity_baseline(items, embed=embed).correct == [1.0]
    assert similarity_baseline(items, embed=embed).scores == [[0.0, 1.0]]


def test_similarity_with_minilm(embedder):
    items = [MCItem(question="a domestic animal that barks", choices=("dog", "volcano"), answer=0)]
    assert similarity_baseline(items).correct == pytest.approx([1.0])
