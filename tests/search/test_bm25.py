"""Tests for llmlab.search.bm25: a textbook example by hand, and score-for-score against bm25s."""

from __future__ import annotations

import bm25s
import numpy as np
import pytest

from llmlab.data.datasets import load_stsb
from llmlab.search.bm25 import BM25Index, words


def test_bm25_textbook_scores():
    docs = ["the cat sat", "the dog sat on the dog mat", "a bird"]
    bm25 = BM25Index(k1=1.5, b=0.75)
    bm25.add(docs)
    n, avg = 3, (3 + 7 + 2) / 3
    idf = np.log(1 + (n - 1 + 0.5) / (1 + 0.5))  # "dog" is in one document
    tf, dl = 2, 7
    expected = idf * tf * 2.5 / (tf + 1.5 * (1 - 0.75 + 0.75 * dl / avg))
    assert bm25.idf("dog") == pytest.approx(idf)
    assert bm25.scores("dog")[1] == pytest.approx(expected, rel=1e-5)
    hits = bm25.search("Dog!", k=5)
    assert [h.id for h in hits] == [1]  # documents with no shared word are not returned
    assert bm25.search("cat sat", k=5)[0].id == 0


def test_words():
    assert words("Dogs, dogs! E-731 isn't") == ["dogs", "dogs", "e", "731", "isn", "t"]


@pytest.fixture(scope="module")
def stsb_corpus():
    """Real text: 600 distinct STS-B sentences as documents, 40 others as queries."""
    sentences = list(dict.fromkeys(s for p in load_stsb() for s in (p.sentence1, p.sentence2)))
    return sentences[:600], sentences[600:640]


def reference_scores(docs, queries, k1, b, method, idf_method=None):
    """bm25s's score of every document for each query, with our tokenisation."""
    ref = bm25s.BM25(k1=k1, b=b, method=method, idf_method=idf_method)
    ref.index([words(d) for d in docs], show_progress=False)
    out = []
    for q in queries:
        known = sorted({w for w in words(q) if w in ref.vocab_dict})  # each distinct word once
        out.append(ref.get_scores(known) if known else np.zeros(len(docs)))
    return np.array(out)  # (n_queries, n_docs)


@pytest.mark.parametrize(("k1", "b"), [(1.5, 0.75), (1.2, 0.3), (2.0, 1.0)])
def test_scores_match_bm25s(stsb_corpus, k1, b):
    docs, queries = stsb_corpus
    ours = BM25Index(k1=k1, b=b)
    ours.add(docs)
    mine = np.array([ours.scores(q) for q in queries])  # (n_queries, n_docs)
    assert (mine > 0).sum() > 1000  # the queries really match many documents
    # the same formula: bm25s's ATIRE term frequency with Lucene's idf
    same = reference_scores(docs, queries, k1, b, "atire", "lucene")
    np.testing.assert_allclose(mine, same, rtol=1e-4, atol=1e-5)
    # bm25s's default (Lucene >= 8) drops the factor (k1 + 1): same ranking, scores / (k1 + 1)
    lucene = reference_scores(docs, queries, k1, b, "lucene")
    np.testing.assert_allclose(mine, lucene * (k1 + 1), rtol=1e-4, atol=1e-5)


def test_top_hits_match_bm25s_retrieve(stsb_corpus):
    docs, queries = stsb_corpus
    ours = BM25Index()
    ours.add(docs)
    ref = bm25s.BM25()
    ref.index([words(d) for d in docs], show_progress=False)
    for q in queries[:10]:
        known = sorted({w for w in words(q) if w in ref.vocab_dict})
        ref_scores = ref.get_scores(known)
        hits = ours.search(q, k=5)
        top = np.sort(ref_scores)[::-1][: len(hits)]
        np.testing.assert_allclose([h.score for h in hits], top * 2.5, rtol=1e-4)


def test_bad_settings_and_empty_index():
    with pytest.raises(ValueError, match="0 <= b <= 1"):
        BM25Index(b=1.5)
    with pytest.raises(ValueError, match="empty"):
        BM25Index().search("hello")
    index = BM25Index()
    index.add(["one text"])
    with pytest.raises(ValueError, match="empty"):
        index.search("   ")
