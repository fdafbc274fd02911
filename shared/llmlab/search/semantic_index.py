"""Semantic search: find the texts whose *meaning* is closest to a query.

Covers:
- ``SemanticIndex``: embed texts once, keep the unit vectors in one ``(n, dim)`` numpy array, and
  answer a query with one matrix-vector product (cosine similarity against every text) plus a
  top-k selection (``np.argpartition``); ``search_many`` embeds many queries in one batch.
  Exact, no approximation (``benchmarks/bench_search.py`` times it at 10k and 100k vectors).
- Saving and loading an index: vectors (``vectors.npy``) + texts/ids/metadata (``records.json``)
  + a manifest (embedding model, dimension, count, checksum), written to a temporary folder and
  renamed into place, so a crash never leaves half an index. An index only makes sense with
  the model that built it: loading or querying it with another model raises ``ModelMismatchError``.
- What every index here shares: ``Hit`` (one result), ``top_k`` (the k best scores),
  ``Records`` (ids, texts and metadata in insertion order, with their checks), ``check_query``
  and ``check_k``. The keyword index ``llmlab.search.bm25.BM25Index`` builds on them; a folder of notes
  is indexed and cached by ``llmlab.search.folder_index``; the ``llmlab search`` command is
  ``llmlab.cli.search``.

Leaves out: approximate nearest-neighbour indexes (FAISS, HNSW: worth it once exact search is
too slow, typically at millions of vectors),
deleting/updating entries, hybrid ranking and re-ranking (Phase 4, ``llmlab.search.retrievers``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llmlab.data.documents import Passage
from llmlab.search.embeddings import check_texts, default_embedder, embed, normalize

INDEX_FORMAT = 1


class ModelMismatchError(ValueError):
    """The index was built with one embedding model and is being used with another."""


@dataclass
class Hit:
    """One scored search result: the stored ``text``, its ``id`` in the index, its ``score``
    (higher = better; compare scores within one ranking only) and the ``metadata`` stored with it.

    An index that knows where its texts sit (``llmlab.search.docs_index``) also gives the
    ``passage`` (file, offsets, lines) and, for a hybrid search whose ``score`` is the fused RRF
    score, the two parts it fused: ``cosine`` (dense) and ``bm25`` (keywords), None where that
    half did not find the text.
    """

    id: Any
    text: str
    score: float
    metadata: dict = field(default_factory=dict)
    passage: Passage | None = None
    cosine: float | None = None
    bm25: float | None = None

    @property
    def where(self) -> str:
        """Where to look: ``notes/a.md:3-5`` if the passage is known, else the id."""
        return self.passage.where if self.passage is not None else str(self.id)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest scores, best first (equal scores: lower index first).

    ``top_k(np.array([0.1, 0.9, 0.5]), 2) -> array([1, 2])``. Uses ``np.argpartition``: it finds
    the k best in one O(n) pass without sorting all n scores; only those k are then sorted.
    """
    n = len(scores)
    k = min(k, n)
    if k < n:
        best = np.argpartition(-scores, k - 1)[:k]  # (k,) the k best, in no particular order
    else:
        best = np.arange(n)
    order = np.lexsort((best, -scores[best]))  # sort by score desc, then by index
    return best[order]


def check_k(k: int) -> int:
    """``k`` as an int; a clear ValueError unless it (the number of results) is a whole number >= 1."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k (the number of results) must be a whole number >= 1, got {k!r}.")
    return int(k)


def check_query(query: str, k: int) -> None:
    """Raise a clear error for a query that is not a non-blank string, or a bad ``k``."""
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, got {type(query).__name__}.")
    if not query.strip():
        raise ValueError("The query is empty: type some words to search for.")
    check_k(k)


class Records:
    """Ids, texts and metadata of the stored entries, kept in the order they were added.

    The shared base of ``SemanticIndex`` and ``llmlab.search.bm25.BM25Index``: ``check_new`` validates a
    batch before anything is stored (so a failed ``add`` changes nothing), ``append`` stores it,
    ``hit`` turns a position and a score into a ``Hit``.
    """

    def __init__(self) -> None:
        self.ids: list[Any] = []
        self.texts: list[str] = []
        self.metadata: list[dict] = []
        self._positions: dict[Any, int] = {}

    def __len__(self) -> int:
        return len(self.texts)

    def check_new(
        self, texts: Sequence[str], ids: Sequence | None, metadata: Sequence | None
    ) -> tuple[list, list]:
        """The ids (default: 0, 1, 2, ... continuing the count) and metadata of a new batch, checked."""
        n = len(texts)
        if ids is None:
            ids = list(range(len(self), len(self) + n))  # default ids: positions 0, 1, 2, ...
        ids = list(ids)
        if len(ids) != n:
            raise ValueError(f"Got {n} texts but {len(ids)} ids: give one id per text (or none).")
        for i in ids:
            if not isinstance(i, (str, int)) or isinstance(i, bool):
                raise TypeError(
                    f"Ids must be strings or integers (they are saved as JSON), got {i!r}."
                )
        dupes = [i for i, c in Counter(ids).items() if c > 1]
        dupes += [i for i in ids if i in self._positions]
        if dupes:
            raise ValueError(
                f"Duplicate ids: {sorted(set(map(str, dupes)))[:5]}. Every entry needs its own id "
                "(leave ids out to number the texts automatically)."
            )
        metadata = [{} for _ in range(n)] if metadata is None else list(metadata)
        if len(metadata) != n:
            raise ValueError(
                f"Got {n} texts but {len(metadata)} metadata dicts: give one per text."
            )
        if not all(isinstance(m, dict) for m in metadata):
            raise TypeError(
                "Each metadata entry must be a dict, e.g. {'file': 'notes.md', 'line': 3}."
            )
        return ids, [dict(m) for m in metadata]

    def append(self, texts: list[str], ids: list, metadata: list[dict]) -> None:
        """Store a batch that ``check_new`` accepted."""
        for i in ids:
            self._positions[i] = len(self._positions)
        self.ids += ids
        self.texts += texts
        self.metadata += metadata

    def hit(self, pos: int, score: float) -> Hit:
        """The entry at position ``pos`` as a ``Hit`` with ``score`` (metadata copied)."""
        return Hit(
            id=self.ids[pos],
            text=self.texts[pos],
            score=float(score),
            metadata=dict(self.metadata[pos]),
        )


class SemanticIndex(Records):
    """Exact cosine-similarity search over embedded texts.

    >>> index = SemanticIndex()
    >>> index.add(["How do I train a puppy?", "Best pasta recipes"])
    >>> index.search("teaching a young dog", k=1)[0].text
    'How do I train a puppy?'
    """

    def __init__(self, embedder: Any = None) -> None:
        super().__init__()
        self.embedder = default_embedder() if embedder is None else embedder
        self.model_name = _model_name(self.embedder)  # the model every stored vector came from
        self.dim: int | None = None
        self.vectors = np.zeros((0, 0), dtype=np.float32)  # (n, dim) unit vectors, one per text
        self.manifest: dict = {}  # filled by load(): what the saved index says about itself

    def add(
        self,
        texts: Sequence[str],
        ids: Sequence | None = None,
        metadata: Sequence[dict] | None = None,
        batch_size: int = 32,
        vectors: np.ndarray | None = None,
    ) -> None:
        """Embed and store texts; call again to add more. ``vectors`` skips embedding (same model!)."""
        self._check_model()
        texts = check_texts(texts)
        ids, metadata = self.check_new(texts, ids, metadata)
        if vectors is None:
            new = embed(texts, batch_size=batch_size, model=self.embedder)  # (m, dim)
        else:
            new = normalize(vectors)  # (m, dim)
            if new.ndim != 2 or new.shape[0] != len(texts):
                raise ValueError(f"vectors must have shape ({len(texts)}, dim), got {new.shape}.")
        if self.dim is not None and new.shape[1] != self.dim:
            raise ModelMismatchError(
                f"New vectors have {new.shape[1]} dimensions but the index holds {self.dim}-d vectors."
            )
        self.dim = int(new.shape[1])
        self.vectors = (
            new if len(self) == 0 else np.concatenate([self.vectors, new])
        )  # (n + m, dim)
        self.append(texts, ids, metadata)

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The ``k`` stored texts most similar in meaning to ``query``, best first."""
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 5) -> list[list[Hit]]:
        """``search`` for each query; the queries are embedded together, in one batch."""
        if isinstance(queries, str) or not queries:
            raise ValueError("search_many takes a non-empty list of queries (search() takes one).")
        for query in queries:
            check_query(query, k)
        self._check_model()
        if len(self) == 0:
            raise ValueError("The index is empty: add() some texts before searching.")
        return [self.search_vector(q, k) for q in embed(list(queries), model=self.embedder)]

    def search_vector(self, q: np.ndarray, k: int = 5) -> list[Hit]:
        """Like ``search``, for a query that is already an embedding of shape ``(dim,)``."""
        check_k(k)
        if len(self) == 0:
            raise ValueError("The index is empty: add() some texts before searching.")
        q = np.asarray(q, dtype=np.float32)
        if q.shape != (self.dim,):
            raise ModelMismatchError(
                f"The query vector has shape {q.shape}; this index needs ({self.dim},)."
            )
        scores = self.vectors @ q  # (n,) cosine similarities: all vectors have length 1
        return [self.hit(i, scores[i]) for i in top_k(scores, k)]

    def _check_model(self) -> None:
        name = _model_name(self.embedder)
        if name != self.model_name:
            raise ModelMismatchError(
                f"This index was built with the embedding model {self.model_name!r}, but its "
                f"embedder is now {name!r}. Vectors from different models live in different "
                "spaces, so the scores would be meaningless. Use the original model, or rebuild "
                "the index with the new one."
            )

    # --- saving and loading --------------------------------------------------------------------

    def save(self, path: str | Path, extra: dict | None = None) -> Path:
        """Write the index to the folder ``path`` (replacing it); ``extra`` goes into the manifest."""
        path = Path(path)
        records = {"ids": self.ids, "texts": self.texts, "metadata": self.metadata}
        records_bytes = json.dumps(records, ensure_ascii=False).encode("utf-8")
        vectors = np.ascontiguousarray(self.vectors, dtype=np.float32)
        manifest = {
            "format": INDEX_FORMAT,
            "model": self.model_name,
            "dim": self.dim,
            "count": len(self),
            "checksum": _checksum(vectors, records_bytes),
            "extra": extra or {},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-tmp-", dir=path.parent))
        old = None
        try:
            np.save(tmp / "vectors.npy", vectors)
            (tmp / "records.json").write_bytes(records_bytes)
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
            if path.exists():  # move the old index aside, put the new one in place, then delete
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}-old-", dir=path.parent))
                os.replace(path, old / "index")
            try:
                os.replace(tmp, path)
            except OSError:
                if not (
                    path / "manifest.json"
                ).is_file():  # another process saved first: keep theirs
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        return path

    @classmethod
    def load(cls, path: str | Path, embedder: Any = None) -> SemanticIndex:
        """Read an index written by ``save``; ``embedder`` must be the model that built it."""
        path = Path(path)
        manifest = read_manifest(path)
        index = cls(embedder)
        if manifest["model"] != index.model_name:
            raise ModelMismatchError(
                f"The index at {path} was built with the embedding model {manifest['model']!r}, "
                f"but you are loading it with {index.model_name!r}. Vectors from different models "
                "are not comparable: load it with the original model, or rebuild the index."
            )
        vectors = np.load(path / "vectors.npy", allow_pickle=False)  # (n, dim)
        records_bytes = (path / "records.json").read_bytes()
        if (
            vectors.shape != (manifest["count"], manifest["dim"])
            or _checksum(vectors, records_bytes) != manifest["checksum"]
        ):
            raise ValueError(f"The index at {path} is damaged (checksum mismatch): rebuild it.")
        records = json.loads(records_bytes)
        index.dim = manifest["dim"]
        index.vectors = vectors
        index.append(records["texts"], records["ids"], records["metadata"])
        index.manifest = manifest
        return index


def read_manifest(path: str | Path) -> dict:
    """The manifest of a saved index, checked (a clear error if the folder holds no valid index)."""
    file = Path(path) / "manifest.json"
    if not file.is_file():
        raise FileNotFoundError(f"No saved index at {path} (missing manifest.json).")
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"The manifest of the index at {path} is not valid JSON ({exc}): rebuild it."
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != INDEX_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else manifest
        raise ValueError(
            f"The index at {path} has format {found!r}; expected {INDEX_FORMAT}. Rebuild it."
        )
    missing = [key for key in ("model", "dim", "count", "checksum", "extra") if key not in manifest]
    if missing:
        raise ValueError(f"The manifest of the index at {path} lacks {missing}: rebuild it.")
    return manifest


def _checksum(vectors: np.ndarray, records_bytes: bytes) -> str:
    h = hashlib.sha256(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    h.update(records_bytes)
    return h.hexdigest()


def _model_name(embedder: Any) -> str:
    from llmlab.runtime.models import embedder_name

    return embedder_name(embedder)
