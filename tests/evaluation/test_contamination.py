"""llmlab.evaluation.contamination: n-grams, template n-grams ignored, the verdicts."""

from __future__ import annotations

import math

import pytest

from llmlab.evaluation.contamination import NgramIndex, flag, ngrams, overlap_scores


def test_ngrams_are_normalised():
    assert ngrams("The Eiffel Tower, Paris!", 2) == {("eiffel", "tower"), ("tower", "paris")}
    assert ngrams("too short", 3) == set()
    with pytest.raises(ValueError):
        ngrams("x", 0)


def test_index():
    index = NgramIndex(["x y z", "z w"], 2)
    assert ("x", "y") in index and ("z", "w") in index and ("y", "w") not in index
    assert len(index) == 3
    with pytest.raises(TypeError):
        NgramIndex("one string", 2)


def test_overlap_ignores_what_the_test_items_share():
    tests = [
        "What is chemical element with atomic number 49? Indium",
        "What is chemical element with atomic number 67? Holmium",
        "What is legendary Greek king of Ithaca? Odysseus",
    ]
    corpus = ["Trivia: what is chemical element with atomic number 49 ? Indium."]
    scores = overlap_scores(tests, corpus, n=3)
    # item 1 is in the corpus; item 2 shares only the 3-grams it also shares with item 1 ("what
    # is chemical", ...): phrases of the benchmark's template, which prove nothing; item 3 is clean
    assert scores == [1.0, 0.0, 0.0]
    assert flag(scores) == [True, False, False]
    # the same item copied in another layout: "Answer:" between question and answer breaks the
    # n-grams that span both, so half of item 1's distinctive 3-grams remain
    reformatted = ["Question: What is chemical element with atomic number 49?\nAnswer: Indium"]
    assert overlap_scores(tests, reformatted, n=3)[0] == 0.5


def test_short_items_cannot_be_checked():
    scores = overlap_scores(["Tomato", "Edible berry"], ["Tomato: edible berry"], n=3)
    assert all(math.isnan(s) for s in scores)
    assert flag(scores) == [False, False]
    with pytest.raises(ValueError):
        flag([0.5], threshold=0)
