"""A persistent, incremental search index of a docs folder: what "chat with your docs" retrieves from.

Covers:
- ``DocsIndex(folder).update()``: read every supported file (``llmlab.data.readers``), cut it into
  chunks (``llmlab.search.chunking.chunk_text``, sized in the embedder's tokens), embed the chunks and
  save them in ``cache_dir()/docs/<hash of the folder path>/index.npz``. Nothing is ever written
  in the user's folder.
- Incremental: a file whose size and modification time are unchanged is not even read; one whose
  bytes hash the same is kept; only added / changed files are re-chunked and re-embedded, and
  removed files' chunks are dropped. An index made with another embedding model or chunker is
  rebuilt, and the report says why. A progress bar is shown while (re)building.
- ``search(query, k)``: hybrid retrieval (BM25 + dense cosine fused with ``llmlab.search.retrievers.rrf``).
  Each ``llmlab.search.semantic_index.Hit`` carries its ``passage`` (file, character span, line
  numbers), its row ``id`` in ``passages``, the fused score and its two parts: the dense
  ``cosine``, which ``llmlab.rag.docchat`` uses as its confidence, and the ``bm25`` score.
  ``search_many`` / ``max_cosine_many`` / ``retrieve_many`` do many queries with one embedding
  call (the same hits as one query at a time, far fewer model calls).
- ``IndexReport``: what ``update`` did (added, changed, removed, skipped, why it rebuilt).

What it stores is the vocabulary of ``llmlab.data.documents``: each file is read as a
``Document``, cut into ``Chunk``s by a ``llmlab.search.chunking.Chunker``, and kept as ``Passage``s.

Leaves out: watching the folder, locking against two processes writing the same index at once
(the last writer wins; the file is replaced atomically so it is never half-written), and cleaning
up indexes of folders that no longer exist (delete ``cache_dir()/docs`` to free space).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llmlab.data.documents import Passage
from llmlab.data.readers import NotReadable, Skipped, read_document, scan_folder
from llmlab.search.chunking import Chunker
from llmlab.search.semantic_index import Hit

FORMAT = 2  # bump when the file layout changes: old indexes are then rebuilt (2: Passage fields)
ENV_DIR = "LLMLAB_DOCS_CACHE"  # overrides where indexes live (tests use a temporary folder)
EMBED_BATCH = 64


def index_root() -> Path:
    """``$LLMLAB_DOCS_CACHE`` if set, else ``llmlab.runtime.model_cache.cache_dir()/docs``."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    from llmlab.runtime.model_cache import cache_dir

    return cache_dir() / "docs"


def index_path(folder: str | Path) -> Path:
    """Where the index of ``folder`` lives: ``index_root()/<sha256 of its resolved path>[:16]``."""
    key = str(Path(folder).resolve())
    return index_root() / hashlib.sha256(key.encode()).hexdigest()[:16] / "index.npz"


@dataclass
class IndexReport:
    """What ``update`` did. ``rebuilt`` says why the whole index was rebuilt (None: incremental)."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    rebuilt: str | None = None
    n_files: int = 0
    n_chunks: int = 0  # passages in the index
    embedded: int = 0  # passages embedded by this update
    seconds: float = 0.0

    def summary(self) -> str:
        head = f"Rebuilt the index: {self.rebuilt}. " if self.rebuilt else ""
        parts = [
            f"{self.n_files} files, {self.n_chunks} chunks",
            f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
            f"{self.unchanged} unchanged",
            f"{self.embedded} chunks embedded in {self.seconds:.1f} s",
        ]
        text = head + "; ".join(parts) + "."
        if self.skipped:
            shown = ", ".join(f"{s.path} ({s.reason})" for s in self.skipped[:5])
            more = f" and {len(self.skipped) - 5} more" if len(self.skipped) > 5 else ""
            text += f" Skipped {len(self.skipped)} files: {shown}{more}."
        return text


class DocsIndex:
    """The passages and vectors of one folder, kept in step with its files by ``update()``."""

    def __init__(
        self,
        folder: str | Path,
        *,
        embedder: Any = None,
        chunker: Chunker | None = None,
        location: str | Path | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.chunker = chunker or Chunker()
        self.location = Path(location) if location else index_path(self.folder)
        self._embedder = embedder
        self.passages: list[Passage] = []
        self.vectors = np.zeros((0, 0), np.float32)  # (n, dim)
        self.files: dict[str, dict] = {}  # path -> {size, mtime_ns, sha256, rows: [a, b]}
        self._retrievers: tuple | None = None

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            from llmlab.search.embeddings import default_embedder

            self._embedder = default_embedder()
        return self._embedder

    @property
    def model_name(self) -> str:
        from llmlab.runtime.models import embedder_name

        return embedder_name(self.embedder)

    def __len__(self) -> int:
        return len(self.passages)

    # --- storage ------------------------------------------------------------------------------

    def _load(self) -> tuple[dict | None, str | None]:
        """The saved manifest (passages and vectors loaded into self), or None and why not."""
        if not self.location.is_file():
            return None, "there was no index yet"
        try:
            with np.load(self.location, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode("utf-8"))
                vectors = np.asarray(z["vectors"], np.float32)
            if meta.get("format") != FORMAT:
                return (
                    None,
                    f"it was saved in format {meta.get('format')}, this version reads {FORMAT}",
                )
            passages = [Passage(**p) for p in meta.pop("passages")]
            if len(passages) != len(vectors):
                raise ValueError("passage and vector counts differ")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return None, f"the saved index could not be read ({exc})"
        if meta.get("embedder") != self.model_name:
            return None, (
                f"it was built with embedding model {meta.get('embedder')!r}, "
                f"now {self.model_name!r} (their vectors cannot be compared)"
            )
        if meta.get("chunker") != self.chunker.key():
            return None, f"it was chunked with {meta.get('chunker')}, now {self.chunker.key()}"
        self.passages, self.vectors, self.files = passages, vectors, meta["files"]
        return meta, None

    def _save(self) -> None:
        meta = {
            "format": FORMAT,
            "folder": str(self.folder.resolve()),
            "embedder": self.model_name,
            "chunker": self.chunker.key(),
            "files": self.files,
            "passages": [asdict(p) for p in self.passages],
        }
        blob = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        self.location.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, meta=blob, vectors=self.vectors)
        fd, tmp = tempfile.mkstemp(suffix=".tmp", dir=self.location.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(buf.getvalue())
            os.replace(tmp, self.location)  # atomic: readers see the old or the new index
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # --- update -------------------------------------------------------------------------------

    def _passages(self, path: Path) -> list[Passage]:
        """The file read as a Document, cut by the chunker, each chunk located: its Passages."""
        doc = read_document(path, self.folder)
        if not doc.text.strip():
            return []
        return [doc.passage(c.start, c.end) for c in self.chunker.cut(doc.text)]

    def update(self, *, rebuild: bool = False, progress: bool | None = None) -> IndexReport:
        """Bring the index in step with the folder; only new or changed files are (re)embedded.

        ``progress=None`` shows a bar when more than 64 chunks are to be embedded.
        """
        paths, skipped = scan_folder(self.folder)  # raises for a missing/empty folder
        self.model_name  # load the embedder now, so its loading time is not counted  # noqa: B018
        t0 = time.perf_counter()
        report = IndexReport(skipped=skipped)
        old_passages, old_vectors, old_files = [], np.zeros((0, 0), np.float32), {}
        if rebuild:
            report.rebuilt = "a rebuild was asked for"
        else:
            meta, why = self._load()
            if meta is None:
                report.rebuilt = why
            else:
                old_passages, old_vectors, old_files = self.passages, self.vectors, self.files
        files: dict[str, dict] = {}
        pieces: list[tuple[str, list[Passage], np.ndarray | None]] = []  # None: to embed
        for p in paths:
            rel, st = p.relative_to(self.folder).as_posix(), p.stat()
            old, entry = old_files.get(rel), {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
            try:
                same_stat = old and (old["size"], old["mtime_ns"]) == (st.st_size, st.st_mtime_ns)
                digest = old["sha256"] if same_stat else hashlib.sha256(p.read_bytes()).hexdigest()
                if old and old["sha256"] == digest:  # unchanged (or touched: same bytes)
                    files[rel] = {**old, **entry}
                    a, b = old["rows"]
                    pieces.append((rel, old_passages[a:b], old_vectors[a:b]))
                    report.unchanged += 1
                    continue
                pieces.append((rel, self._passages(p), None))
            except (NotReadable, OSError) as exc:
                skipped.append(Skipped(path=rel, reason=str(exc)))
                continue
            (report.changed if old else report.added).append(rel)
            files[rel] = {**entry, "sha256": digest}
        report.removed = sorted(set(old_files) - set(files))
        new = [p for _, ps, v in pieces if v is None for p in ps]
        fresh = iter(self._embed([p.text for p in new], progress))  # rows of (m, dim)
        passages: list[Passage] = []
        rows: list[np.ndarray] = []
        for rel, ps, v in pieces:  # file order: kept vectors copied, new ones from `fresh`
            files[rel]["rows"] = [len(passages), len(passages) + len(ps)]
            passages += ps
            rows += list(v) if v is not None else [next(fresh) for _ in ps]
        vectors = np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)
        self.passages, self.vectors, self.files, self._retrievers = passages, vectors, files, None
        if not passages:
            raise ValueError(
                f"Nothing to index: no readable text in {str(self.folder)!r} "
                f"({len(skipped)} files skipped). Point it at a folder of documents."
            )
        changed = report.rebuilt or report.added or report.changed or report.removed
        if changed or any(files[r] != old_files.get(r) for r in files):
            self._save()
        report.n_files, report.n_chunks, report.embedded = len(files), len(passages), len(new)
        report.seconds = time.perf_counter() - t0
        return report

    def _embed(self, texts: list[str], progress: bool | None) -> np.ndarray:
        from llmlab.search.embeddings import embed

        if not texts:
            return np.zeros((0, 0), np.float32)
        show = len(texts) > EMBED_BATCH if progress is None else progress
        if not show:
            return embed(texts, batch_size=EMBED_BATCH, model=self.embedder, show_progress=False)
        from tqdm.auto import tqdm

        order = np.argsort([-len(t) for t in texts], kind="stable")  # similar lengths batched:
        parts = []  # less padding (sentence-transformers sorts only within one call)
        with tqdm(total=len(texts), desc="Indexing", unit="chunk") as bar:
            for i in range(0, len(texts), EMBED_BATCH):
                batch = [texts[j] for j in order[i : i + EMBED_BATCH]]
                parts.append(
                    embed(batch, batch_size=EMBED_BATCH, model=self.embedder, show_progress=False)
                )
                bar.update(len(batch))
        vectors = np.empty((len(texts), parts[0].shape[1]), np.float32)  # (n, dim)
        vectors[order] = np.concatenate(parts)  # back in the texts' order
        return vectors

    # --- search -------------------------------------------------------------------------------

    def retrievers(self) -> tuple[Any, Any]:
        """``(BM25Retriever, DenseRetriever)`` over the passages (built once per update)."""
        from llmlab.search.retrievers import BM25Retriever, DenseRetriever

        if not self.passages:
            raise ValueError("The index is empty: call update() first.")
        if self._retrievers is None:
            texts = [p.text for p in self.passages]
            self._retrievers = (
                BM25Retriever(texts),
                DenseRetriever(
                    texts, embedder=self.embedder, vectors=self.vectors, model_name=self.model_name
                ),
            )
        return self._retrievers

    def search(self, query: str, k: int = 5, depth: int = 50) -> list[Hit]:
        """The ``k`` best passages for ``query``: BM25 and dense rankings (``depth`` each) fused by RRF."""
        return self.retrieve_many([query], k, depth)[0][0]

    def search_many(self, queries: list[str], k: int = 5, depth: int = 50) -> list[list[Hit]]:
        """``search`` for each of ``queries``, the queries embedded in one call."""
        return self.retrieve_many(queries, k, depth)[0]

    def retrieve_many(
        self,
        queries: list[str],
        k: int = 5,
        depth: int = 50,
    ) -> tuple[list[list[Hit]], list[float]]:
        """The hits of each query and its best cosine with any passage (``max_cosine``), from one
        embedding call: the dense ranking's first score is that best cosine."""
        from llmlab.search.retrievers import rrf

        bm25, dense = self.retrievers()
        d_runs = dense.search_many(queries, max(k, depth))  # one embedding call for all
        hits, best = [], []
        for query, d_hits in zip(queries, d_runs, strict=True):
            b_hits = bm25.search(query, max(k, depth)) if any(c.isalnum() for c in query) else []
            cos, bm = {h.id: h.score for h in d_hits}, {h.id: h.score for h in b_hits}
            fused = rrf([[h.id for h in b_hits], [h.id for h in d_hits]])[:k]
            hits.append([self.hit(i, s, cos.get(i), bm.get(i)) for i, s in fused])
            best.append(d_hits[0].score)
        return hits, best

    def hit(self, row: int, score: float, cosine: float | None, bm25: float | None) -> Hit:
        """Passage ``row`` as a Hit: fused ``score`` and its dense and BM25 parts."""
        p = self.passages[row]
        return Hit(id=row, text=p.text, score=score, passage=p, cosine=cosine, bm25=bm25)

    def max_cosine(self, query: str) -> float:
        """The best dense cosine of any passage with ``query``: how close the nearest one is."""
        return self.max_cosine_many([query])[0]

    def max_cosine_many(self, queries: list[str]) -> list[float]:
        """``max_cosine`` of each query, the queries embedded in one call."""
        _, dense = self.retrievers()
        return [hits[0].score for hits in dense.search_many(queries, 1)]


def open_index(folder: str | Path, **kwargs: Any) -> tuple[DocsIndex, IndexReport]:
    """``DocsIndex(folder, ...)`` brought up to date: ``(index, report)``."""
    rebuild, progress = kwargs.pop("rebuild", False), kwargs.pop("progress", None)
    index = DocsIndex(folder, **kwargs)
    return index, index.update(rebuild=rebuild, progress=progress)
