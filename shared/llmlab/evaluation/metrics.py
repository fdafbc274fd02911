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
- Uncertainty: ``bootstrap_ci(values)``, a percentile bootstrap confidence interval of the mean;
  ``wilson_ci(hits, n)``, the Wilson score interval of a rate (honest at 0/n and n/n);
  ``standard_error(values)``; ``paired_bootstrap_ci(a, b)``, the CI of the difference between two
  systems scored on the same items (resample items, not scores); ``items_needed(p1, p2)``, how
  many test items it takes to tell two accuracies apart.

Leaves out: model-based faithfulness (NLI entailment: no such model ships offline), LLM-as-judge
prompting (see ``evaluation.ipynb``), corrections for testing many hypotheses at once.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from llmlab.search.semantic_index import check_k


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
    return len(relevant & set(_ranked(ranked_ids)[: check_k(k)])) / len(relevant)


def precision_at_k(
    ranked_ids: Sequence[Hashable], relevant_ids: Iterable[Hashable], k: int
) -> float:
    """Share of the top ``k`` slots holding a relevant item (a list shorter than k counts the gap)."""
    relevant = _relevant(relevant_ids)
    return sum(1 for i in _ranked(ranked_ids)[: check_k(k)] if i in relevant) / k


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
    return float(sum(g / math.log2(r + 2) for r, g in enumerate(list(gains)[: check_k(k)])))


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
    return SpanScores(
        recall=hit / len(want),
        precision=hit / len(got) if got else 0.0,
        iou=hit / len(got | want),
    )


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


def wilson_ci(hits: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a rate of ``hits`` out of ``n`` (what ``statsmodels``'
    ``proportion_confint(method="wilson")`` gives). Unlike the textbook p +- 1.96 SE it never
    leaves [0, 1] and stays honest at 0/n and n/n: ``wilson_ci(0, 24) -> (0.0, 0.138...)``.
    """
    from statistics import NormalDist

    if isinstance(hits, bool) or isinstance(n, bool) or n <= 0 or not 0 <= hits <= n:
        raise ValueError(f"Need whole numbers 0 <= hits <= n and n > 0, got hits={hits}, n={n}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}.")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)  # 1.96 for 95%
    p, d = hits / n, 1 + z * z / n
    mid = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, mid - half), min(1.0, mid + half)


def standard_error(values: Sequence[float]) -> float:
    """Standard error of the mean, sample standard deviation / sqrt(n): for 0/1 scores about
    sqrt(p (1 - p) / n). ``standard_error([1, 0, 1, 0]) -> 0.289``."""
    x = np.asarray(values, dtype=float)  # (n,)
    if x.ndim != 1 or len(x) < 2:
        raise ValueError("values must be a flat list of at least 2 per-item scores.")
    return float(x.std(ddof=1) / math.sqrt(len(x)))


def paired_bootstrap_ci(
    a: Sequence[float],
    b: Sequence[float],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """CI of mean(a) - mean(b) for two systems scored on the SAME items (a[i], b[i] = item i).

    Resamples items, keeping each item's pair together: the items both systems find easy or hard
    cancel out, so the interval is much narrower than comparing two separate CIs. If it excludes
    0, the ranking of the two systems is not a coin flip on this test set.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)  # (n,), (n,)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(
            f"a and b must be flat lists of per-item scores on the same items, got shapes "
            f"{x.shape} and {y.shape}."
        )
    return bootstrap_ci(x - y, n_resamples=n_resamples, confidence=confidence, seed=seed)


def items_needed(p1: float, p2: float, *, confidence: float = 0.95, power: float = 0.8) -> int:
    """Test items (per model, independent samples) for a two-sided test at ``confidence`` to
    detect accuracies ``p1`` vs ``p2`` with probability ``power`` (the standard two-proportion
    formula: n = (z_a sqrt(2 p q) + z_b sqrt(p1 q1 + p2 q2))^2 / (p1 - p2)^2, p = the mean).

    ``items_needed(0.50, 0.52) -> 9806``: two points apart needs about ten thousand items.
    Scoring both models on the same items (paired) needs fewer when they often agree.
    """
    from statistics import NormalDist

    for name, p in (("p1", p1), ("p2", p2)):
        if not 0 < p < 1:
            raise ValueError(f"{name} must be an accuracy strictly between 0 and 1, got {p}.")
    if p1 == p2:
        raise ValueError("p1 == p2: no number of items can tell two equal accuracies apart.")
    if not 0 < confidence < 1 or not 0 < power < 1:
        raise ValueError("confidence and power must be between 0 and 1 (e.g. 0.95 and 0.8).")
    z_a = NormalDist().inv_cdf(0.5 + confidence / 2)
    z_b = NormalDist().inv_cdf(power)
    p = (p1 + p2) / 2
    root = z_a * math.sqrt(2 * p * (1 - p)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(root**2 / (p1 - p2) ** 2)
