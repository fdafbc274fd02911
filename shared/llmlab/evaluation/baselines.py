"""Baselines a benchmark result should be read against: could something dumb do as well?

Each baseline scores every option of every item and picks the best, like a model would:

- ``random_baseline``: guess uniformly; expected accuracy 1 / (number of options).
- ``always_position(items, k)``: always answer the k-th option ("always A"). On a set whose
  right answers sit at each position equally often it scores exactly the chance rate; on an
  unbalanced answer key it does not, and neither does a model with a position bias.
- ``longest_option``: pick the longest option (test writers often make the right one the most
  careful, so the longest: a known artefact of hand-written tests).
- ``bm25_baseline``: keyword overlap between question and option (``llmlab.search.bm25``,
  with idf over all the options of the set).
- ``similarity_baseline``: cosine similarity of question and option in MiniLM space. Careful
  when the distractors were *chosen* with the same embedder (``llmlab.evaluation.benchmarks``
  picks them as MiniLM nearest neighbours): the benchmark was built to fool exactly this model,
  which is how adversarial filtering works (HellaSwag filtered its endings against BERT).

Ties are split, not broken: an item where the gold option ties with t - 1 others for the best
score counts 1/t (the expected accuracy of breaking the tie at random). So a baseline that
cannot tell the options apart scores chance, not "always the first option".

Leaves out: trained baselines (a classifier on the dev split) and the "hypothesis-only"
baseline (options without the question), a classic check for annotation artefacts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from llmlab.evaluation.multiple_choice import MCItem, MCResult


def tie_share(scores: Sequence[float], answer: int) -> float:
    """1/t if option ``answer`` is among the t options sharing the best score, else 0.

    ``tie_share([1, 3, 3], 1) -> 0.5``; ``tie_share([1, 3, 2], 0) -> 0.0``.
    """
    best = max(scores)
    top = [k for k, s in enumerate(scores) if s == best]
    return 1 / len(top) if answer in top else 0.0


def score_options(
    name: str, items: Sequence[MCItem], scores: Sequence[Sequence[float]]
) -> MCResult:
    """An ``MCResult`` from one score per option, ties split (see the module docstring)."""
    if len(scores) != len(items):
        raise ValueError(f"Got {len(scores)} score lists for {len(items)} items.")
    return MCResult(
        name=name,
        correct=[tie_share(s, it.answer) for s, it in zip(scores, items, strict=True)],
        predictions=[int(np.argmax(s)) for s in scores],
        scores=[list(map(float, s)) for s in scores],
    )


def random_baseline(items: Sequence[MCItem]) -> MCResult:
    """Uniform guessing: every option ties, so each item counts 1 / (number of options)."""
    return score_options("random", items, [[0.0] * len(it.choices) for it in items])


def always_position(items: Sequence[MCItem], position: int = 0) -> MCResult:
    """Always pick the option at ``position`` (0 = "A"): the answer key's balance, measured."""
    scores = [[float(k == position) for k in range(len(it.choices))] for it in items]
    return score_options(f"always {'ABCDEFGHIJ'[position]}", items, scores)


def longest_option(items: Sequence[MCItem]) -> MCResult:
    """Pick the option with the most characters."""
    return score_options("longest", items, [[len(c) for c in it.choices] for it in items])


def bm25_baseline(items: Sequence[MCItem]) -> MCResult:
    """Pick the option sharing the most (rare) words with the question, by BM25."""
    from llmlab.search.bm25 import BM25Index

    texts = sorted({c for it in items for c in it.choices})
    where = {t: k for k, t in enumerate(texts)}
    index = BM25Index()
    index.add(texts)
    scores = []
    for it in items:
        s = index.scores(it.question)  # (n_texts,): every option of the set
        scores.append([float(s[where[c]]) for c in it.choices])
    return score_options("BM25", items, scores)


def similarity_baseline(
    items: Sequence[MCItem], embed: Callable[[list[str]], np.ndarray] | None = None
) -> MCResult:
    """Pick the option whose embedding is closest to the question's (MiniLM by default)."""
    if embed is None:
        from llmlab.search.embedding_cache import embed_cached as embed
    questions = embed([it.question for it in items])  # (n, dim) unit vectors
    texts = sorted({c for it in items for c in it.choices})
    where = {t: k for k, t in enumerate(texts)}
    options = embed(texts)  # (m, dim)
    scores = [
        [float(options[where[c]] @ questions[i]) for c in it.choices] for i, it in enumerate(items)
    ]
    return score_options("MiniLM", items, scores)
