"""Semantic search: find the texts whose *meaning* is closest to a query, and a keyword baseline.

Covers:
- ``SemanticIndex``: embed texts once, keep the unit vectors in one ``(n, dim)`` numpy array, and
  answer a query with one matrix-vector product (cosine similarity against every text) plus a
  top-k selection (``np.argpartition``). Exact, no approximation (``benchmarks/bench_search.py``
  times it at 10k and 100k vectors).
- Saving and loading an index: vectors (``vectors.npy``) + texts/ids/metadata (``records.json``)
  + a manifest (embedding model, dimension, count, checksum), written to a temporary folder and
  renamed into place, so a crash never leaves half an index. An index only makes sense with
  the model that built it: loading or querying it with another model raises ``ModelMismatchError``.
- ``BM25Index``: the classic keyword ranking (what search engines used before embeddings), in
  plain numpy, for side-by-side comparisons.
- ``index_folder`` and the ``llmlab search PATH "query"`` command: index a folder of notes
  (paragraphs, see ``llmlab.ingest``), cache the index, rebuild it when the files change.

Leaves out: approximate nearest-neighbour indexes (FAISS, HNSW: worth it once exact search is
too slow, typically at millions of vectors),
deleting/updating entries, hybrid ranking and re-ranking (phase 4, RAG).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llmlab.embeddings import _check_texts, default_embedder, embed, normalize
from llmlab.ingest import EXTENSIONS, fingerprint, ingest_folder, passage_metadata

INDEX_FORMAT = 1


class ModelMismatchError(ValueError):
    """The index was built with one embedding model and is being used with another."""


@dataclass
class Hit:
    """One search result: the stored text, its id, its score (higher = better) and metadata."""

    id: Any
    text: str
    score: float
    metadata: dict = field(default_factory=dict)


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


def _check_k(k: int) -> None:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k (the number of results) must be a whole number >= 1, got {k!r}.")


def _check_query(query: str, k: int) -> None:
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, got {type(query).__name__}.")
    if not query.strip():
        raise ValueError("The query is empty: type some words to search for.")
    _check_k(k)


class _Records:
    """Ids, texts and metadata of the stored entries, kept in the order they were added."""

    def __init__(self) -> None:
        self.ids: list[Any] = []
        self.texts: list[str] = []
        self.metadata: list[dict] = []
        self._positions: dict[Any, int] = {}

    def __len__(self) -> int:
        return len(self.texts)

    def _check_new(self, texts: Sequence[str], ids: Sequence | None, metadata: Sequence | None) -> tuple[list, list]:
        n = len(texts)
        if ids is None:
            ids = list(range(len(self), len(self) + n))  # default ids: positions 0, 1, 2, ...
        ids = list(ids)
        if len(ids) != n:
            raise ValueError(f"Got {n} texts but {len(ids)} ids: give one id per text (or none).")
        for i in ids:
            if not isinstance(i, (str, int)) or isinstance(i, bool):
                raise TypeError(f"Ids must be strings or integers (they are saved as JSON), got {i!r}.")
        dupes = [i for i, c in Counter(ids).items() if c > 1] + [i for i in ids if i in self._positions]
        if dupes:
            raise ValueError(
                f"Duplicate ids: {sorted(set(map(str, dupes)))[:5]}. Every entry needs its own id "
                "(leave ids out to number the texts automatically)."
            )
        metadata = [{} for _ in range(n)] if metadata is None else list(metadata)
        if len(metadata) != n:
            raise ValueError(f"Got {n} texts but {len(metadata)} metadata dicts: give one per text.")
        if not all(isinstance(m, dict) for m in metadata):
            raise TypeError("Each metadata entry must be a dict, e.g. {'file': 'notes.md', 'line': 3}.")
        return ids, [dict(m) for m in metadata]

    def _append(self, texts: list[str], ids: list, metadata: list[dict]) -> None:
        for i in ids:
            self._positions[i] = len(self._positions)
        self.ids += ids
        self.texts += texts
        self.metadata += metadata

    def _hit(self, pos: int, score: float) -> Hit:
        return Hit(id=self.ids[pos], text=self.texts[pos], score=float(score), metadata=dict(self.metadata[pos]))


class SemanticIndex(_Records):
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
        texts = _check_texts(texts)
        ids, metadata = self._check_new(texts, ids, metadata)
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
        self.vectors = new if len(self) == 0 else np.concatenate([self.vectors, new])  # (n + m, dim)
        self._append(texts, ids, metadata)

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The ``k`` stored texts most similar in meaning to ``query``, best first."""
        _check_query(query, k)
        self._check_model()
        if len(self) == 0:
            raise ValueError("The index is empty: add() some texts before searching.")
        q = embed([query], model=self.embedder)[0]  # (dim,)
        return self.search_vector(q, k)

    def search_vector(self, q: np.ndarray, k: int = 5) -> list[Hit]:
        """Like ``search``, for a query that is already an embedding of shape ``(dim,)``."""
        _check_k(k)
        if len(self) == 0:
            raise ValueError("The index is empty: add() some texts before searching.")
        q = np.asarray(q, dtype=np.float32)
        if q.shape != (self.dim,):
            raise ModelMismatchError(f"The query vector has shape {q.shape}; this index needs ({self.dim},).")
        scores = self.vectors @ q  # (n,) cosine similarities: all vectors have length 1
        return [self._hit(i, scores[i]) for i in top_k(scores, k)]

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
                if not (path / "manifest.json").is_file():  # another process saved first: keep theirs
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
        if vectors.shape != (manifest["count"], manifest["dim"]) or _checksum(
            vectors, records_bytes
        ) != manifest["checksum"]:
            raise ValueError(f"The index at {path} is damaged (checksum mismatch): rebuild it.")
        records = json.loads(records_bytes)
        index.dim = manifest["dim"]
        index.vectors = vectors
        index._append(records["texts"], records["ids"], records["metadata"])
        index.manifest = manifest
        return index


def read_manifest(path: str | Path) -> dict:
    """The manifest of a saved index (raises a clear error if it is not one)."""
    file = Path(path) / "manifest.json"
    if not file.is_file():
        raise FileNotFoundError(f"No saved index at {path} (missing manifest.json).")
    manifest = json.loads(file.read_text())
    if manifest.get("format") != INDEX_FORMAT:
        raise ValueError(f"The index at {path} has format {manifest.get('format')}; expected {INDEX_FORMAT}. Rebuild it.")
    return manifest


def _checksum(vectors: np.ndarray, records_bytes: bytes) -> str:
    h = hashlib.sha256(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    h.update(records_bytes)
    return h.hexdigest()


def _model_name(embedder: Any) -> str:
    from llmlab.models import embedder_name

    return embedder_name(embedder)


# --- keyword baseline ------------------------------------------------------------------------------

WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens: ``words("Dogs, dogs!") -> ['dogs', 'dogs']``."""
    return WORD.findall(text.lower())


class BM25Index(_Records):
    """Okapi BM25: score = sum over query words of idf(word) * saturated, length-normalised term frequency.

    For each query word w found in document d:
        idf(w) = ln(1 + (N - df + 0.5) / (df + 0.5))         rare words count more
        tf part = tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(d) / avg_len))
    ``k1`` (1.5) caps how much repeating a word helps; ``b`` (0.75) favours short documents.
    Documents that share no word with the query score 0 and are not returned.
    """

    def __init__(self, k1: float = 1.5, b: float = 0.75) -> None:
        super().__init__()
        self.k1, self.b = k1, b
        self.doc_len = np.zeros(0, dtype=np.float32)  # (n,) words per document
        self.postings: dict[str, tuple[list[int], list[int]]] = {}  # word -> (doc positions, counts)

    def add(self, texts: Sequence[str], ids: Sequence | None = None, metadata: Sequence[dict] | None = None) -> None:
        """Tokenise and store texts; call again to add more."""
        texts = _check_texts(texts)
        ids, metadata = self._check_new(texts, ids, metadata)
        lengths = []
        for pos, text in enumerate(texts, start=len(self)):
            counts = Counter(words(text))
            lengths.append(sum(counts.values()))
            for w, c in counts.items():
                docs, tfs = self.postings.setdefault(w, ([], []))
                docs.append(pos)
                tfs.append(c)
        self.doc_len = np.concatenate([self.doc_len, np.array(lengths, dtype=np.float32)])
        self._append(texts, ids, metadata)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for ``query``: shape ``(n,)``; loops over query words only."""
        n = len(self)
        scores = np.zeros(n, dtype=np.float32)  # (n,)
        avg_len = max(float(self.doc_len.mean()), 1e-9) if n else 1.0
        for w in set(words(query)):
            if w not in self.postings:
                continue
            docs, tfs = (np.array(a) for a in self.postings[w])  # (df,), (df,)
            idf = math.log(1 + (n - len(docs) + 0.5) / (len(docs) + 0.5))
            norm = self.k1 * (1 - self.b + self.b * self.doc_len[docs] / avg_len)  # (df,)
            scores[docs] += idf * tfs * (self.k1 + 1) / (tfs + norm)
        return scores

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """Up to ``k`` documents sharing words with ``query``, best BM25 score first."""
        _check_query(query, k)
        if len(self) == 0:
            raise ValueError("The index is empty: add() some texts before searching.")
        s = self.scores(query)
        return [self._hit(i, s[i]) for i in top_k(s, k) if s[i] > 0]


# --- a folder of notes, cached ------------------------------------------------------------------


def folder_cache_path(folder: str | Path, extensions: tuple[str, ...] = EXTENSIONS) -> Path:
    """Where the cached index of ``folder`` lives: ``cache_dir()/indexes/<hash of its absolute path>``."""
    from llmlab.models import cache_dir

    key = str(Path(folder).resolve()) + ("" if extensions == EXTENSIONS else repr(sorted(extensions)))
    return cache_dir() / "indexes" / hashlib.sha256(key.encode()).hexdigest()[:16]


def index_folder(
    folder: str | Path,
    embedder: Any = None,
    cache: bool = True,
    rebuild: bool = False,
    extensions: tuple[str, ...] = EXTENSIONS,
) -> tuple[SemanticIndex, bool]:
    """Index every paragraph of the ``.md``/``.txt`` files (or ``extensions``) under ``folder``.

    Returns ``(index, rebuilt)``. With ``cache=True`` a saved index is reused as long as no file
    was added, removed or changed (paths, sizes and modification times all match) and the
    embedding model is the same; otherwise (or with ``rebuild=True``) it is rebuilt and saved.
    """
    folder = Path(folder)
    print_ = fingerprint(folder, extensions)  # raises a clear error if folder is not a folder
    where = folder_cache_path(folder, extensions)
    embedder = default_embedder() if embedder is None else embedder
    if cache and not rebuild and (where / "manifest.json").is_file():
        try:
            manifest = read_manifest(where)
            if manifest["extra"].get("fingerprint") == print_ and manifest["model"] == _model_name(embedder):
                return SemanticIndex.load(where, embedder), False
        except (ValueError, OSError, KeyError):
            pass  # a damaged or outdated cache is simply rebuilt
    passages = ingest_folder(folder, extensions=extensions)
    if not passages:
        raise ValueError(f"No paragraphs found: {str(folder)!r} has no non-empty {'/'.join(extensions)} files.")
    index = SemanticIndex(embedder)
    index.add(
        [p.text for p in passages],
        ids=[p.where for p in passages],
        metadata=[passage_metadata(p) for p in passages],
    )
    if cache:
        index.save(where, extra={"folder": str(folder.resolve()), "fingerprint": print_})
    return index, True


def format_hit(rank: int, hit: Hit, width: int = 160) -> str:
    """``1. 0.712  notes/a.md:3-5`` and the start of the passage on the next line."""
    snippet = " ".join(hit.text.split())
    snippet = snippet if len(snippet) <= width else snippet[: width - 1] + "…"
    return f"{rank:>2}. {hit.score:.3f}  {hit.id}\n    {snippet}"


def cli(argv: list[str] | None = None) -> int:
    """``llmlab search PATH "query" [-k 5]``: semantic search over a folder of notes."""
    parser = argparse.ArgumentParser(
        prog="llmlab search",
        description="Semantic search over the .md/.txt files of a folder (indexed by paragraph, cached).",
    )
    parser.add_argument("path", help="folder of .md/.txt notes")
    parser.add_argument("query", help="what to look for, in your own words")
    parser.add_argument("-k", type=int, default=5, help="number of results (default: 5)")
    parser.add_argument("--rebuild", action="store_true", help="ignore the cached index and rebuild it")
    args = parser.parse_args(argv)
    if args.k < 1:
        parser.error(f"-k must be at least 1, got {args.k}")
    if not args.query.strip():
        parser.error("the query is empty: type some words to search for")
    try:
        index, rebuilt = index_folder(args.path, rebuild=args.rebuild)
        hits = index.search(args.query, k=args.k)
    except (ValueError, OSError) as exc:
        print(f"llmlab search: {exc}", file=sys.stderr)
        return 2
    files = len({m["file"] for m in index.metadata})
    state = "built" if rebuilt else "cached"
    print(f"{len(index)} passages from {files} files ({state} index, model {index.model_name})\n")
    for rank, hit in enumerate(hits, start=1):
        print(format_hit(rank, hit))
    return 0
