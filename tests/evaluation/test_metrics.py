"""Metrics against references: sklearn's nDCG, SQuAD v1.1's official normalisation, hand examples."""

from __future__ import annotations

import re
import string
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import ndcg_score

from llmlab.evaluation.metrics import (
    bootstrap_ci,
    dcg_at_k,
    exact_match,
    mrr,
    ndcg_at_k,
    normalize_answer,
    precision_at_k,
    recall_at_k,
    span_scores,
    support_score,
    token_f1,
)


# The official SQuAD v1.1 evaluation script's functions (evaluate-v1.1.py), the reference.
def squad_normalize(s):
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def squad_f1(prediction, ground_truth):
    prediction_tokens = squad_normalize(prediction).split()
    ground_truth_tokens = squad_normalize(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def test_hand_computed_retrieval_example():
    ranked = ["d3", "d1", "d7", "d2", "d9"]
    relevant = {"d1", "d2", "d5"}
    assert recall_at_k(ranked, relevant, 1) == 0.0
    assert recall_at_k(ranked, relevant, 2) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, relevant, 5) == pytest.approx(2 / 3)  # d5 never retrieved
    assert precision_at_k(ranked, relevant, 4) == pytest.approx(2 / 4)
    assert mrr(ranked, relevant) == pytest.approx(1 / 2)
    assert mrr(["x", "y"], {"d1"}) == 0.0
    # nDCG@3 with grades: DCG = 0/log2(2) + 2/log2(3) + 0 = 1.2619; ideal 3 + 2/log2(3) + 1/2
    grades = {"d1": 2, "d2": 1, "d5": 3}
    assert dcg_at_k([0, 2, 0], 3) == pytest.approx(2 / np.log2(3))
    assert ndcg_at_k(ranked, grades, 3) == pytest.approx(
        (2 / np.log2(3)) / (3 + 2 / np.log2(3) + 0.5)
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 3), min_size=2, max_size=12).filter(lambda g: any(g)),
    st.integers(1, 12),
    st.randoms(use_true_random=False),
)
def test_ndcg_matches_sklearn(grades, k, rnd):
    # sklearn ranks by y_score and averages DCG over tied scores; distinct scores avoid ties.
    scores = list(range(len(grades)))
    rnd.shuffle(scores)
    ranked = sorted(range(len(grades)), key=lambda i: -scores[i])
    ours = ndcg_at_k(ranked, dict(enumerate(grades)), k)
    theirs = ndcg_score([grades], [scores], k=k)
    assert ours == pytest.approx(theirs)


def test_sklearn_tie_handling_differs_from_a_ranked_list():
    # Two items tied at the top: sklearn averages both orders; a ranked list commits to one.
    grades, scores = [1, 0], [0.5, 0.5]
    assert ndcg_score([grades], [scores]) == pytest.approx((1 + 1 / np.log2(3)) / 2)
    assert ndcg_at_k([1, 0], {0: 1, 1: 0}, 2) == pytest.approx(1 / np.log2(3))
    assert ndcg_score([grades], [scores], ignore_ties=True) in (
        pytest.approx(1.0),
        pytest.approx(1 / np.log2(3)),
    )


@given(st.text(max_size=40))
def test_normalisation_is_squad(text):
    assert normalize_answer(text) == squad_normalize(text)


@pytest.mark.parametrize(
    "pred, gold",
    [
        ("The Eiffel Tower", "Eiffel tower"),
        ("Paris, France", "Paris"),
        ("in 1968", "1968"),
        ("Stanley Kubrick directed it", "Kubrick"),
        ("an apple a day", "the apple"),
        ("x", "y z"),
    ],
)
def test_f1_and_em_match_squad(pred, gold):
    assert token_f1(pred, gold) == pytest.approx(squad_f1(pred, gold))
    assert exact_match(pred, gold) == float(squad_normalize(pred) == squad_normalize(gold))


def test_best_over_accepted_answers():
    assert exact_match("the Kubrick", ["Stanley Kubrick", "Kubrick"]) == 1.0
    assert token_f1("Stanley", ["Stanley Kubrick", "Kubrick"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="answers is empty"):
        token_f1("x", [])


def test_span_scores_hand_example():
    s = span_scores([("d", 0, 10)], [("d", 5, 15)])
    assert (s.recall, s.precision, s.iou) == (0.5, 0.5, pytest.approx(5 / 15))
    # overlapping chunks count each position once; other documents never match
    s = span_scores([("d", 0, 10), ("d", 5, 15), ("e", 5, 15)], [("d", 5, 15)])
    assert s.recall == 1.0 and s.precision == pytest.approx(10 / 25)
    assert span_scores([], [("d", 0, 3)]).recall == 0.0


def test_support_score_proxy_and_its_blind_spot():
    context = "Python was created by Guido van Rossum and first released in 1991."
    assert support_score("Guido van Rossum created it", context) == 1.0
    assert support_score("Larry Wall created it", context) == pytest.approx(1 / 3)
    # the proxy's known failure: a contradiction made of context words scores as grounded
    assert support_score("Python was not created by Guido", context) == 1.0


def test_bootstrap_ci_contains_mean_and_narrows_with_n():
    rng = np.random.default_rng(0)
    small = rng.integers(0, 2, 30)
    large = rng.integers(0, 2, 3000)
    lo, hi = bootstrap_ci(small)
    assert lo <= small.mean() <= hi
    lo2, hi2 = bootstrap_ci(large)
    assert (hi2 - lo2) < (hi - lo) / 5  # width shrinks like 1/sqrt(n): 10x here
    assert bootstrap_ci(small) == bootstrap_ci(small)  # seeded
    # a normal-approximation interval agrees on a large sample
    se = large.std(ddof=1) / np.sqrt(len(large))
    assert lo2 == pytest.approx(large.mean() - 1.96 * se, abs=0.01)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: recall_at_k(["a"], {"a"}, 0), "k .* >= 1"),
        (lambda: recall_at_k(["a"], set(), 1), "relevant_ids is empty"),
        (lambda: recall_at_k("abc", {"a"}, 1), "not one string"),
        (lambda: ndcg_at_k(["a"], {"a": 0}, 1), "undefined"),
        (lambda: bootstrap_ci([]), "non-empty"),
        (lambda: bootstrap_ci([1.0], confidence=95), "between 0 and 1"),
        (lambda: support_score("the a", "ctx"), "no content words"),
    ],
)
def test_bad_input_says_what_to_do(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# --- intervals, paired comparisons, sample sizes ------------------------------------------------


def test_wilson_matches_scipy():
    from scipy.stats import binomtest

    from llmlab.evaluation.metrics import wilson_ci

    for hits, n in [(0, 24), (7, 20), (20, 20), (130, 200)]:
        ci = binomtest(hits, n).proportion_ci(method="wilson")
        assert wilson_ci(hits, n) == pytest.approx((ci.low, ci.high))
    ci = binomtest(7, 20).proportion_ci(confidence_level=0.9, method="wilson")
    assert wilson_ci(7, 20, confidence=0.9) == pytest.approx((ci.low, ci.high))
    with pytest.raises(ValueError):
        wilson_ci(3, 2)


def test_standard_error_matches_scipy():
    from scipy.stats import sem

    from llmlab.evaluation.metrics import standard_error

    x = [1, 0, 1, 1, 0, 1, 0, 0, 1, 1]
    assert standard_error(x) == pytest.approx(float(sem(x)))


def test_paired_bootstrap():
    from llmlab.evaluation.metrics import paired_bootstrap_ci

    a = [1, 0, 1, 1, 0, 1, 0, 1] * 10
    assert paired_bootstrap_ci(a, a) == (0.0, 0.0)  # the same system: no difference at all
    better = [1] * 80
    low, high = paired_bootstrap_ci(better, a)
    assert 0 < low <= high  # always right vs right 5 times in 8: better on these items
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap_ci([1, 0], [1])


def test_items_needed_gives_the_promised_power():
    """Simulate: with n items per model, a two-sided z-test at 5% tells 0.50 from 0.52 in about
    80% of runs (the power the formula promises); with a tenth of the items, rarely."""
    from llmlab.evaluation.metrics import items_needed

    n = items_needed(0.50, 0.52)
    assert 9000 < n < 11000
    rng = np.random.default_rng(0)

    def power(n_items, runs=4000):
        a = rng.binomial(n_items, 0.50, runs) / n_items  # (runs,)
        b = rng.binomial(n_items, 0.52, runs) / n_items
        p = (a + b) / 2
        z = (b - a) / np.sqrt(2 * p * (1 - p) / n_items)
        return float(np.mean(np.abs(z) > 1.96))

    assert power(n) == pytest.approx(0.8, abs=0.03)
    assert power(n // 10) < 0.2
    with pytest.raises(ValueError):
        items_needed(0.5, 0.5)
