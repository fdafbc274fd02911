"""Evaluation: numbers that say whether retrieval and answers are good, and how sure we are.

Covers, each for ONE query or ONE answer (average over a test set yourself, e.g. ``np.mean``):
- Retrieval: ``recall_at_k``, ``precision_at_k``, ``reciprocal_rank`` / ``mrr`` (the same
  thing for one query; the mean over queries is the MRR), ``dcg_at_k`` and ``ndcg_at_k`` with
  graded relevance (gain = relevance, discount = log2(rank + 1), as ``sklearn.metrics.ndcg_score``).
- Chunk retrieval against gold character spans (Chroma's chunking evaluation): ``span_scores``
  gives recall, precision and IoU of the positions the retrieved chunks cover.
- Answers: ``normalize_answer`` (SQuAD v1.1: lowercase, drop punctuation and a/an/the, squeeze
  spaces), ``exact_match`` and ``token_f1`` (best over the accepted answers), and
  ``support_score``, a groundedness proxy: the share of the answer's words found in the context.
- Uncertainty: ``bootstrap_ci(values)``, a percentile bootstrap confidence interval of the mean.

Leaves out: model-based faithfulness (NLI entailment: no such model ships offline), LLM-as-judge
prompting (see ``evaluation.ipynb``), statistical tests between two systems (a paired bootstrap
is the next step: resample the same items for both).
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(
            f"k (how many top results to score) must be a whole number >= 1, got {k!r}."
        )
    return int(k)


def _ranked(ranked_ids: Sequence[Hashable]) -> list[Hashable]:
    if isinstance(ranked_ids, str):
        raise TypeError("ranked_ids must be a list of ids (best first), not one string.")
    return list(ranked_ids)


def _relevant(relevant_ids: Iterable[Hashable]) -> set[Hashable]:
    if isinstance(relevant_ids, str):
        relevant_ids = [relevant_ids]
    relevant = set(relevant_ids)
    if not relevant:
        raise ValueError("relevant_ids is empty: a query with no relevant item cannot be scored.")
    return relevant


def recall_at_k(ranked_ids: Sequence[Hashable], relevant_ids: Iterable[Hashable], k: int) -> float:
    """Share of the relevant items found in the top ``k``: ``recall_at_k(["a", "b"], {"b"}, 1) -> 0.0``."""
    relevant = _relevant(relevant_ids)
    return len(relevant & set(_ranked(ranked_ids)[: _check_k(k)])) / len(relevant)


def precision_at_k(
    ranked_ids: Sequence[Hashable], relevant_ids: Iterable[Hashable], k: int
) -> float:
    """Share of the top ``k`` slots holding a relevant item (a list shorter than k counts the gap)."""
    relevant = _relevant(relevant_ids)
    return sum(1 for i in _ranked(ranked_ids)[: _check_k(k)] if i in relevant) / k


def reciprocal_rank(ranked_ids: Sequence[Hashable], relevant_ids: Iterable[Hashable]) -> float:
    """1 / (rank of the first relevant item), 0 if none: ``reciprocal_rank(["a", "b"], {"b"}) -> 0.5``."""
    relevant = _relevant(relevant_ids)
    for rank, item in enumerate(_ranked(ranked_ids), start=1):
        if item in relevant:
            return 1.0 / rank
    return 0.0


def mrr(ranked_ids: Sequence[Hashable], relevant_ids: Iterable[Hashable]) -> float:
    """The reciprocal rank of one query; the MRR of a test set is the mean of these."""
    return reciprocal_rank(ranked_ids, relevant_ids)


def dcg_at_k(gains: Sequence[float], k: int) -> float:
    """Discounted cumulative gain of gains in rank order: sum of gain / log2(rank + 1)."""
    return float(sum(g / math.log2(r + 2) for r, g in enumerate(list(gains)[: _check_k(k)])))


def ndcg_at_k(
    ranked_ids: Sequence[Hashable], relevance_by_id: Mapping[Hashable, float], k: int
) -> float:
    """DCG of this ranking / DCG of the best possible ranking, in [0, 1].

    ``relevance_by_id`` grades items (0 or missing = irrelevant). ``ndcg_at_k(["b", "a"],
    {"a": 1}, 2) -> 0.63`` (1 / log2(3)): the relevant item came second, not first.
    """
    grades = [float(v) for v in relevance_by_id.values()]
    if any(g < 0 for g in grades):
        raise ValueError("Relevance grades must be >= 0 (0 = irrelevant).")
    ideal = dcg_at_k(sorted(grades, reverse=True), k)
    if ideal == 0:
        raise ValueError("No item has a relevance above 0: nDCG is undefined for this query.")
    return dcg_at_k([float(relevance_by_id.get(i, 0.0)) for i in _ranked(ranked_ids)], k) / ideal


@dataclass(frozen=True)
class SpanScores:
    """How well retrieved spans cover the gold spans, counted in positions (characters or tokens)."""

    recall: float  # share of gold positions that were retrieved
    precision: float  # share of retrieved positions that are gold
    iou: float  # overlap / union of the two position sets


Span = tuple[Hashable, int, int]  # (document id, start, end): positions start..end-1


def _positions(spans: Iterable[Span]) -> set[tuple[Hashable, int]]:
    out: set[tuple[Hashable, int]] = set()
    for doc, start, end in spans:
        if end < start:
            raise ValueError(f"A span ends before it starts: ({doc!r}, {start}, {end}).")
        out.update((doc, p) for p in range(start, end))
    return out


def span_scores(retrieved: Iterable[Span], gold: Iterable[Span]) -> SpanScores:
    """Recall, precision and IoU of the positions covered by ``retrieved`` vs ``gold``.

    Overlapping retrieved chunks count each position once (a set), as in Chroma's evaluation.
    ``span_scores([("d", 0, 10)], [("d", 5, 15)]) -> recall 0.5, precision 0.5, iou 0.33``.
    """
    got, want = _positions(retrieved), _positions(gold)
    if not want:
        raise ValueError("The gold spans are empty: nothing to find.")
    hit = len(got & want)
    return SpanScores(hit / len(want), hit / len(got) if got else 0.0, hit / len(got | want))


# --- answers ------------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: ``normalize_answer("The  Eiffel-Tower!") -> "eiffeltower"``."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _answers(answers: str | Sequence[str]) -> list[str]:
    answers = [answers] if isinstance(answers, str) else list(answers)
    if not answers:
        raise ValueError("answers is empty: give at least one accepted answer.")
    return answers


def exact_match(prediction: str, answers: str | Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised accepted answer, else 0.0."""
    return float(
        any(normalize_answer(prediction) == normalize_answer(a) for a in _answers(answers))
    )


def _f1(prediction: str, answer: str) -> float:
    pred, gold = normalize_answer(prediction).split(), normalize_answer(answer).split()
    if not pred or not gold:
        return float(pred == gold)  # SQuAD: both empty -> 1, one empty -> 0
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, answers: str | Sequence[str]) -> float:
    """Best word-overlap F1 against the accepted answers: partial credit for partial answers."""
    return max(_f1(prediction, a) for a in _answers(answers))


STOPWORDS = frozenset(
    "a an the is are was were be been of in on at to for from by with and or as it its this that "
    "these those he she they his her their i you we not no do does did has have had can will".split()
)


def support_score(answer: str, context: str) -> float:
    """Groundedness proxy: share of the answer's content words (normalised, stopwords dropped)
    that occur in the context. 1.0 = every word could come from the context; it cannot see
    paraphrase, negation or a wrong combination of right words."""
    words = [w for w in normalize_answer(answer).split() if w not in STOPWORDS]
    if not words:
        raise ValueError("The answer has no content words to check (only stopwords or empty).")
    seen = set(normalize_answer(context).split())
    return sum(w in seen for w in words) / len(words)


# --- uncertainty ------------------------------------------------------------------------------


def bootstrap_ci(
    values: Sequence[float], *, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean: resample ``values`` with replacement, take the mean
    each time, and return the middle ``confidence`` share of those means.

    ``bootstrap_ci([1, 0, 1, 1])`` -> about ``(0.25, 1.0)``: four items say little.
    """
    x = np.asarray(values, dtype=float)  # (n,)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError("values must be a non-empty flat list of per-item scores.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}.")
    if n_resamples < 100:
        raise ValueError(
            f"n_resamples={n_resamples} is too few for stable percentiles: use >= 1000."
        )
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_resamples, len(x)))].mean(axis=1)  # (n_resamples,)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)
