"""BM25: the classic keyword ranking, written by hand in numpy so you can read every step.

Search engines ranked documents this way before embeddings (Lucene and Elasticsearch still do
by default). For each query word ``w`` found in document ``d``:

    idf(w)  = ln(1 + (N - df + 0.5) / (df + 0.5))                    rare words count more
    tf part = tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(d) / avg_len))
    score   = sum over the distinct query words of idf(w) * tf part

``N`` documents, ``df`` of them contain ``w``, ``tf`` = how often ``w`` occurs in ``d``.
``k1`` (1.5) caps how much repeating a word helps; ``b`` (0.75) favours short documents.

Which BM25: this is the formula on Wikipedia ("Okapi BM25"), with Lucene's idf (never negative).
In ``bm25s`` (the fast library Phase 4 uses) it is ``bm25s.BM25(method="atire",
idf_method="lucene")``, score for score (``tests/search/test_bm25.py`` checks it on a real corpus).
bm25s's default ``method="lucene"`` (like Lucene >= 8) drops the constant factor ``(k1 + 1)``:
its scores are ours divided by 2.5, and the ranking is identical.

Covers: ``words`` (lower-cased ``\\w+`` tokens), ``BM25Index`` (add texts, ``scores``, ``search``).
Documents that share no word with the query score 0 and are not returned.
Leaves out: stop words, stemming ("leaking" vs "leak"), phrase queries, a query word's own
count (each distinct query word counts once), deleting entries, and speed at millions of
documents (bm25s uses sparse matrices for that).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from llmlab.search.embeddings import check_texts
from llmlab.search.semantic_index import Hit, Records, check_query, top_k

WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens: ``words("Dogs, dogs!") -> ['dogs', 'dogs']``."""
    return WORD.findall(text.lower())


class BM25Index(Records):
    """Okapi BM25 keyword search (formula in the module docstring).

    >>> index = BM25Index()
    >>> index.add(["the cat sat", "the dog barked"])
    >>> [h.id for h in index.search("dog")]
    [1]
    """

    def __init__(self, k1: float = 1.5, b: float = 0.75) -> None:
        super().__init__()
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(
                f"BM25 needs k1 >= 0 and 0 <= b <= 1 (usual: 1.5, 0.75); got {k1}, {b}."
            )
        self.k1, self.b = k1, b
        self.doc_len = np.zeros(0, dtype=np.float32)  # (n,) words per document
        self.postings: dict[
            str, tuple[list[int], list[int]]
        ] = {}  # word -> (doc positions, counts)

    def add(
        self,
        texts: Sequence[str],
        ids: Sequence | None = None,
        metadata: Sequence[dict] | None = None,
    ) -> None:
        """Tokenise and store texts; call again to add more."""
        texts = check_texts(texts)
        ids, metadata = self.check_new(texts, ids, metadata)
        lengths = []
        for pos, text in enumerate(texts, start=len(self)):
            counts = Counter(words(text))
            lengths.append(sum(counts.values()))
            for w, c in counts.items():
                docs, tfs = self.postings.setdefault(w, ([], []))
                docs.append(pos)
                tfs.append(c)
        self.doc_len = np.concatenate([self.doc_len, np.array(lengths, dtype=np.float32)])
        self.append(texts, ids, metadata)

    def idf(self, word: str) -> float:
        """How rare ``word`` is: ``ln(1 + (N - df + 0.5) / (df + 0.5))``; 0 if it never occurs."""
        df = len(self.postings[word][0]) if word in self.postings else 0
        if df == 0:
            return 0.0
        return math.log(1 + (len(self) - df + 0.5) / (df + 0.5))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for ``query``: shape ``(n,)``; loops over query words only."""
        n = len(self)
        scores = np.zeros(n, dtype=np.float32)  # (n,)
        avg_len = max(float(self.doc_len.mean()), 1e-9) if n else 1.0
        for w in set(words(query)):
            if w not in self.postings:
                continue
            docs, tfs = (np.array(a) for a in self.postings[w])  # (df,), (df,)
            norm = self.k1 * (1 - self.b + self.b * self.doc_len[docs] / avg_len)  # (df,)
            scores[docs] += self.idf(w) * tfs * (self.k1 + 1) / (tfs + norm)
        return scores

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """Up to ``k`` documents sharing words with ``query``, best BM25 score first."""
        check_query(query, k)
        if len(self) == 0:
            raise ValueError("The index is empty: add() some texts before searching.")
        s = self.scores(query)  # (n,)
        return [self.hit(i, s[i]) for i in top_k(s, k) if s[i] > 0]
