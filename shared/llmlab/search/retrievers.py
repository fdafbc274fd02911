"""Retrieval for RAG: find the passages that answer a question, by words, by meaning, or both.

Covers, behind one API (``.search(query, k) -> list[Hit]`` and a batched ``.search_many``):
- ``BM25Retriever``: keyword ranking with the hand-written ``BM25Index`` (Phase 1), or the
  ``bm25s`` library (``backend="bm25s"``, same formula up to a constant factor, much faster).
- ``DenseRetriever``: exact cosine search in numpy: embeddings (cached on disk by
  ``llmlab.search.embedding_cache``) times the query vector, then ``top_k``. Every passage is scored.
- ``FaissRetriever``: the same vectors in a ``faiss`` index: ``"flat"`` (exact, like numpy),
  ``"ivf"`` (k-means cells; search only the ``nprobe`` nearest cells) or ``"hnsw"`` (a graph
  walked greedily; ``ef_search`` nodes kept). IVF and HNSW are approximate: they can miss.
- ``rrf(rankings)`` and ``HybridRetriever``: reciprocal rank fusion, score(d) = sum over
  rankings of 1 / (k + rank of d): uses only ranks, so BM25 and cosine scales never mix.

Leaves out: re-ranking with a cross-encoder (none installs offline), updates/deletes, saving
indexes (``llmlab.search.semantic_index.SemanticIndex`` does that), query rewriting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from llmlab.search.bm25 import BM25Index, words
from llmlab.search.embedding_cache import embed_cached
from llmlab.search.embeddings import embed
from llmlab.search.semantic_index import Hit, ModelMismatchError, check_k, top_k

Ranking = list[tuple[int, float]]  # (position in the corpus, score), best first


def _check_queries(queries: Sequence[str]) -> list[str]:
    if isinstance(queries, str):
        raise TypeError("search_many() takes a list of queries; for one query use search().")
    queries = list(queries)
    for i, q in enumerate(queries):
        if not isinstance(q, str):
            raise TypeError(f"queries[{i}] must be a string, got {type(q).__name__}.")
        if not q.strip():
            raise ValueError(f"queries[{i}] is empty: type some words to search for.")
    return queries


class Retriever:
    """A fixed corpus of passages (``texts`` with ``ids``) you can search; subclasses rank."""

    name = "retriever"

    def __init__(self, texts: Sequence[str], ids: Sequence | None = None) -> None:
        if isinstance(texts, str):
            raise TypeError("texts must be a list of passages, not one string.")
        self.texts = list(texts)
        if not self.texts:
            raise ValueError("The corpus is empty: give at least one passage to search.")
        bad = [i for i, t in enumerate(self.texts) if not isinstance(t, str) or not t.strip()]
        if bad:
            raise ValueError(
                f"Passages {bad[:5]} are empty or not strings: drop them before indexing."
            )
        self.ids = list(range(len(self.texts))) if ids is None else list(ids)
        if len(self.ids) != len(self.texts):
            raise ValueError(
                f"Got {len(self.texts)} passages but {len(self.ids)} ids: one id each."
            )
        if len(set(self.ids)) != len(self.ids):
            raise ValueError("Ids must be unique: two passages share an id.")

    def __len__(self) -> int:
        return len(self.texts)

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The ``k`` best passages for ``query``, best first."""
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}.")
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 5) -> list[list[Hit]]:
        """``search`` for many queries at once (batched where the method allows it)."""
        queries, k = _check_queries(queries), check_k(k)
        return [
            [Hit(id=self.ids[p], text=self.texts[p], score=float(s)) for p, s in ranking]
            for ranking in self._rank_many(queries, k)
        ]

    def _rank_many(self, queries: list[str], k: int) -> list[Ranking]:
        raise NotImplementedError


class BM25Retriever(Retriever):
    """BM25 keyword search; ``backend="llmlab"`` (hand-written, for teaching) or ``"bm25s"``."""

    name = "bm25"

    def __init__(
        self,
        texts: Sequence[str],
        ids: Sequence | None = None,
        *,
        k1: float = 1.5,
        b: float = 0.75,
        backend: str = "llmlab",
    ) -> None:
        super().__init__(texts, ids)
        if backend not in ("llmlab", "bm25s"):
            raise ValueError(f"backend must be 'llmlab' or 'bm25s', got {backend!r}.")
        self.backend = backend
        if backend == "llmlab":
            self.index = BM25Index(k1=k1, b=b)
            self.index.add(self.texts)
        else:
            import bm25s

            self.index = bm25s.BM25(k1=k1, b=b, method="lucene")  # same idf as BM25Index
            self.index.index([words(t) or [""] for t in self.texts], show_progress=False)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every passage: ``(n,)``. bm25s leaves out the constant factor (k1 + 1)."""
        if self.backend == "llmlab":
            return self.index.scores(query)
        return self.index.get_scores(
            list(dict.fromkeys(words(query)))
        )  # each word once, as BM25Index

    def _rank_many(self, queries: list[str], k: int) -> list[Ranking]:
        out = []
        for q in queries:
            s = self.scores(q)  # (n,)
            out.append([(int(p), float(s[p])) for p in top_k(s, k) if s[p] > 0])
        return out


class DenseRetriever(Retriever):
    """Exact cosine search: unit vectors ``(n, dim)``, one matrix product per batch of queries.

    ``vectors`` (with ``model_name``, the embedder that made them) skips embedding the corpus;
    otherwise it is embedded with ``embedder`` through the on-disk cache.
    """

    name = "dense"

    def __init__(
        self,
        texts: Sequence[str],
        ids: Sequence | None = None,
        *,
        embedder: Any = None,
        vectors: np.ndarray | None = None,
        model_name: str | None = None,
        cache_queries: bool = False,
    ) -> None:
        from llmlab.runtime.models import embedder_name
        from llmlab.search.embeddings import default_embedder

        super().__init__(texts, ids)
        self.embedder = default_embedder() if embedder is None else embedder
        self.model_name = embedder_name(self.embedder)
        if vectors is None:
            vectors = embed_cached(self.texts, model=self.embedder)  # (n, dim)
        elif model_name is not None and model_name != self.model_name:
            raise ModelMismatchError(
                f"These vectors were made by {model_name!r} but queries would be embedded by "
                f"{self.model_name!r}: their spaces differ, so scores would be meaningless. "
                "Pass the original embedder, or re-embed the passages with this one."
            )
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # (n, dim)
        if self.vectors.ndim != 2 or len(self.vectors) != len(self.texts):
            raise ValueError(
                f"vectors must have shape ({len(self.texts)}, dim), got {self.vectors.shape}."
            )
        self.cache_queries = cache_queries

    def embed_queries(self, queries: list[str]) -> np.ndarray:
        """Query vectors ``(q, dim)`` from the same embedder as the passages."""
        if self.cache_queries:
            return embed_cached(queries, model=self.embedder)
        return embed(queries, model=self.embedder)

    def search_vectors(self, query_vectors: np.ndarray, k: int = 5) -> list[list[Hit]]:
        """Search with ready-made query vectors ``(q, dim)``."""
        return [
            [Hit(id=self.ids[p], text=self.texts[p], score=float(s)) for p, s in ranking]
            for ranking in self._rank_vectors(np.asarray(query_vectors, np.float32), check_k(k))
        ]

    def _rank_many(self, queries: list[str], k: int) -> list[Ranking]:
        return self._rank_vectors(self.embed_queries(queries), k)

    def _check_dim(self, q: np.ndarray) -> np.ndarray:
        q = q.reshape(1, -1) if q.ndim == 1 else q  # (q, dim)
        if q.shape[1] != self.vectors.shape[1]:
            raise ModelMismatchError(
                f"Query vectors have {q.shape[1]} dimensions, the index {self.vectors.shape[1]}: "
                "they come from different embedding models."
            )
        return q

    def _rank_vectors(self, q: np.ndarray, k: int) -> list[Ranking]:
        q = self._check_dim(q)
        out = []
        for start in range(0, len(q), 256):  # 256 queries at a time bounds the (q, n) matrix
            sims = q[start : start + 256] @ self.vectors.T  # (q, n) cosine similarities
            out += [[(int(p), float(row[p])) for p in top_k(row, k)] for row in sims]
        return out


class FaissRetriever(DenseRetriever):
    """``DenseRetriever`` with a faiss index: ``kind`` = ``"flat"``, ``"ivf"`` or ``"hnsw"``.

    ``nlist``/``nprobe`` (IVF: cells made, cells searched) and ``m``/``ef_search`` (HNSW: links
    per node, candidates kept while searching) trade recall for speed.
    """

    def __init__(
        self,
        texts: Sequence[str],
        ids: Sequence | None = None,
        *,
        kind: str = "hnsw",
        nlist: int | None = None,
        nprobe: int = 8,
        m: int = 32,
        ef_search: int = 64,
        **dense: Any,
    ) -> None:
        import faiss

        super().__init__(texts, ids, **dense)
        if kind not in ("flat", "ivf", "hnsw"):
            raise ValueError(f"kind must be 'flat', 'ivf' or 'hnsw', got {kind!r}.")
        self.kind, self.name = kind, f"faiss-{kind}"
        n, dim = self.vectors.shape
        ip = faiss.METRIC_INNER_PRODUCT  # = cosine on unit vectors
        if kind == "flat":
            self.index = faiss.IndexFlatIP(dim)
        elif kind == "ivf":
            nlist = nlist or max(1, int(4 * np.sqrt(n)))
            nlist = max(1, min(nlist, n // 39))  # k-means wants ~39 points per cell
            self.quantizer = faiss.IndexFlatIP(dim)  # keep a reference: the index does not own it
            self.index = faiss.IndexIVFFlat(self.quantizer, dim, nlist, ip)
            self.index.train(self.vectors)
            self.index.nprobe = min(nprobe, nlist)
        else:
            self.index = faiss.IndexHNSWFlat(dim, m, ip)
            self.index.hnsw.efSearch = ef_search
        self.index.add(self.vectors)

    def _rank_vectors(self, q: np.ndarray, k: int) -> list[Ranking]:
        q = np.ascontiguousarray(self._check_dim(q))
        if self.kind == "hnsw":
            self.index.hnsw.efSearch = max(self.index.hnsw.efSearch, k)
        scores, pos = self.index.search(q, min(k, len(self)))  # (q, k) each; -1 = nothing found
        return [
            [(int(p), float(s)) for p, s in zip(prow, srow, strict=True) if p >= 0]
            for prow, srow in zip(pos, scores, strict=True)
        ]


def rrf(rankings: Sequence[Sequence[Any]], k: int = 60) -> list[tuple[Any, float]]:
    """Reciprocal rank fusion: ``score(d) = sum_r 1 / (k + rank_r(d))`` (ranks start at 1).

    ``rrf([["a", "b"], ["b", "c"]]) -> [('b', 0.0325), ('a', 0.0164), ('c', 0.0161)]`` (rounded).
    A large ``k`` flattens the bonus for being first; ties keep first-seen order.
    """
    if isinstance(k, bool) or not isinstance(k, (int, float)) or k < 0:
        raise ValueError(f"The RRF constant k must be a number >= 0 (60 is usual), got {k!r}.")
    fused: dict[Any, float] = {}
    for ranking in rankings:
        for rank, doc in enumerate(ranking, start=1):
            fused[doc] = fused.get(doc, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda item: -item[1])  # stable: ties keep first-seen order


class HybridRetriever(Retriever):
    """Fuse several retrievers over the same passages with ``rrf``; each is asked for ``depth``."""

    name = "hybrid"

    def __init__(
        self, retrievers: Sequence[Retriever], *, rrf_k: int = 60, depth: int = 50
    ) -> None:
        if len(retrievers) < 1:
            raise ValueError("HybridRetriever needs at least one retriever to fuse.")
        first = retrievers[0]
        for r in retrievers[1:]:
            if r.ids != first.ids:
                raise ValueError(
                    f"{r.name} and {first.name} index different passages: build "
                    "every retriever from the same texts and ids."
                )
        super().__init__(first.texts, first.ids)
        self.retrievers, self.rrf_k, self.depth = list(retrievers), rrf_k, check_k(depth)
        self._pos = {doc: p for p, doc in enumerate(self.ids)}

    @classmethod
    def bm25_dense(
        cls,
        texts: Sequence[str],
        ids: Sequence | None = None,
        *,
        backend: str = "llmlab",
        **dense: Any,
    ) -> HybridRetriever:
        """The usual pair: ``BM25Retriever`` + ``DenseRetriever`` over ``texts``."""
        return cls(
            [BM25Retriever(texts, ids, backend=backend), DenseRetriever(texts, ids, **dense)]
        )

    def _rank_many(self, queries: list[str], k: int) -> list[Ranking]:
        per = [r.search_many(queries, max(k, self.depth)) for r in self.retrievers]
        out = []
        for i in range(len(queries)):
            fused = rrf([[h.id for h in hits[i]] for hits in per], k=self.rrf_k)[:k]
            out.append([(self._pos[doc], score) for doc, score in fused])
        return out
