"""Contamination: finding test items that were in the training data, by n-gram overlap.

A model that saw a test item while training can answer it from memory; its score then says
nothing about the skill the benchmark is meant to measure. Labs check by looking for long runs
of words shared between each test item and the training corpus: GPT-3 called an item
contaminated if any 8- to 13-gram (depending on the data set) occurred in a training document,
lm-evaluation-harness's decontamination tool uses 13-grams (``docs/decontamination.md``), PaLM
8-grams (contaminated when 70% of an item's 8-grams occur in the training data).

Covers: ``ngrams(text, n)`` (words normalised as SQuAD does, so punctuation and case do not
hide a copy), ``NgramIndex`` (every n-gram of a corpus), ``overlap_scores(test_texts,
corpus, n)``: per test text, the share of its *distinctive* n-grams found in the corpus.
Distinctive = occurring in no other test text: a phrase many items share ("what is chemical
element with atomic number") is the benchmark's template, and matching it proves nothing.
``flag(scores, threshold)`` turns the shares into verdicts.

Limits worth knowing: an item shorter than n words has no n-gram and cannot be flagged (13-gram
checks miss every short question), a paraphrase shares few n-grams, and without the training
corpus (closed models) only indirect signals remain, such as an unusually low loss on the
test items.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

from llmlab.evaluation.metrics import normalize_answer

NGram = tuple[str, ...]


def ngrams(text: str, n: int) -> set[NGram]:
    """The set of n-word runs of a normalised text.

    ``ngrams("The Eiffel Tower, Paris!", 2) -> {("eiffel", "tower"), ("tower", "paris")}``
    (the article "the" is dropped by the normalisation).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a whole number >= 1, got {n!r}.")
    words = normalize_answer(text).split()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


class NgramIndex:
    """Every n-gram of a corpus, in a set: ``"x" in index`` after ``NgramIndex(texts, n)``."""

    def __init__(self, corpus: Iterable[str], n: int) -> None:
        if isinstance(corpus, str):
            raise TypeError("corpus must be a list of texts, not one string.")
        self.n = n
        self.grams: set[NGram] = set()
        for text in corpus:
            self.grams |= ngrams(text, n)

    def __contains__(self, gram: NGram) -> bool:
        return gram in self.grams

    def __len__(self) -> int:
        return len(self.grams)


def overlap_scores(test_texts: Sequence[str], corpus: Iterable[str], n: int = 8) -> list[float]:
    """Per test text: the share of its distinctive n-grams (in no other test text) that occur
    in ``corpus``; ``nan`` when it has none (shorter than ``n`` words, or all template)."""
    if isinstance(test_texts, str):
        raise TypeError("test_texts must be a list of texts, not one string.")
    grams = [ngrams(t, n) for t in test_texts]
    seen_in = Counter(g for gs in grams for g in gs)  # in how many test texts each n-gram is
    index = NgramIndex(corpus, n)
    out = []
    for gs in grams:
        own = [g for g in gs if seen_in[g] == 1]
        out.append(sum(g in index for g in own) / len(own) if own else math.nan)
    return out


def flag(scores: Sequence[float], threshold: float = 0.5) -> list[bool]:
    """True where at least ``threshold`` of an item's distinctive n-grams are in the corpus."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}.")
    return [not math.isnan(s) and s >= threshold for s in scores]
