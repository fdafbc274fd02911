"""Retrieval quality as a regression test: fixed queries, measured floors (evaluation.ipynb §7).

The task: a Wikipedia article's short description ("1968 film by Stanley Kubrick") must find
that article's lead paragraph. The subsets are fixed by their seeds, so the queries never change;
each floor sits a little under the lower end of the measured 95% bootstrap interval, so chance
never fails the test but a real regression (a broken tokenizer, the wrong embedder, a BM25 bug,
a changed data file) does. Measured on 2026-11-28: BM25 on 2,000 leads / 800 queries R@10 0.926
[0.908, 0.945], MRR 0.781 [0.757, 0.805]; dense (MiniLM) on 300 leads / 150 queries R@10 0.99.
"""

from __future__ import annotations

import numpy as np
import pytest

from llmlab.data.datasets import wiki_subset
from llmlab.evaluation.metrics import bootstrap_ci, mrr, recall_at_k
from llmlab.search.retrievers import BM25Retriever, DenseRetriever

FLOORS = {  # metric -> the lowest acceptable mean
    "bm25 R@10": 0.88,  # CI lower bound 0.907
    "bm25 MRR": 0.72,
    "dense R@10": 0.95,  # CI lower bound 0.980
    "dense MRR": 0.80,
}


def scores(retriever, articles, n_queries):
    hits = retriever.search_many([a.description for a in articles[:n_queries]], k=10)
    ranked = [[h.id for h in hs] for hs in hits]
    gold = [{a.title} for a in articles[:n_queries]]
    return (
        np.array([recall_at_k(r, g, 10) for r, g in zip(ranked, gold, strict=True)]),
        np.array([mrr(r, g) for r, g in zip(ranked, gold, strict=True)]),
    )


def check(name, values):
    lo, hi = bootstrap_ci(values)
    assert values.mean() >= FLOORS[name], (
        f"{name} fell to {values.mean():.3f} (95% CI [{lo:.3f}, {hi:.3f}]), under its floor "
        f"{FLOORS[name]}: retrieval got worse. If the change is intended, re-measure and move the floor."
    )


def test_bm25_retrieval_does_not_regress():
    articles = wiki_subset(2000, seed=1)
    retriever = BM25Retriever([a.extract for a in articles], [a.title for a in articles])
    r10, rr = scores(retriever, articles, 800)
    check("bm25 R@10", r10)
    check("bm25 MRR", rr)


@pytest.mark.slow
def test_dense_retrieval_does_not_regress():
    articles = wiki_subset(300, seed=0)  # the same leads as evaluation.ipynb: one embedding cache
    retriever = DenseRetriever([a.extract for a in articles], [a.title for a in articles])
    r10, rr = scores(retriever, articles, 150)
    check("dense R@10", r10)
    check("dense MRR", rr)
