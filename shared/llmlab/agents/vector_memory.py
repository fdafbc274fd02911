"""Long-term agent memory: turns embedded and found again by similarity, kept in a SQLite file.

Same interface as ``llmlab.agents.memory`` (``add``, ``context``, ``cost``).

- ``VectorMemory``: every turn embedded (``llmlab.search.embedding_cache.embed_cached``, MiniLM), the
  top-k turns by cosine similarity to the query.
- ``preload_vectors(memories, texts)``: embed texts known in advance (a test conversation's turns
  and questions) ONCE, in one batch, for every vector memory; ``add``/``search`` then look the
  vectors up instead of embedding a few turns at each question.
- ``SQLiteMemory``: ``VectorMemory`` persisted in a stdlib ``sqlite3`` file (``SCHEMA``; vectors
  as float32 blobs) that a new process reloads and any SQLite viewer opens.

Leaves out: approximate vector indexes (exact cosine is fast at this size), deduplication and
forgetting, a "not found" threshold (a cosine score alone cannot say a fact was never told).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llmlab.agents.memory import MESSAGE_OVERHEAD, Memory, Message, positive_int
from llmlab.search.semantic_index import ModelMismatchError


class VectorMemory(Memory):
    """Long-term memory: the ``k`` past turns most similar to the query (cosine, MiniLM).
    ``cache=True`` keeps the turns' vectors in ``embed_cached``'s on-disk cache (one file per batch)."""

    def __init__(
        self,
        k: int = 8,
        embedder: Any = None,
        count: Callable[[str], int] | None = None,
        cache: bool = True,
    ) -> None:
        from llmlab.runtime.models import embedder_name
        from llmlab.search.embeddings import default_embedder

        super().__init__(count)
        self.k = positive_int(k, "k", "8")
        self.embedder = default_embedder() if embedder is None else embedder
        self.model_name = embedder_name(self.embedder)
        self.vectors = np.zeros((0, 0), dtype=np.float32)  # (turns embedded, dim)
        self.known: dict[str, np.ndarray] = {}  # text -> (dim,) vector, from preload_vectors
        self.cache = cache

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` vectors: preloaded ones looked up, the rest embedded in one batch."""
        from llmlab.search.embedding_cache import embed_cached
        from llmlab.search.embeddings import embed

        missing = list(dict.fromkeys(t for t in texts if t not in self.known))
        if missing:
            fresh = (embed_cached if self.cache else embed)(
                missing, model=self.embedder
            )  # (n, dim)
            self.known.update(zip(missing, fresh, strict=True))
        return np.stack([self.known[t] for t in texts])  # (len(texts), dim)

    def _embed_new(self) -> np.ndarray:
        """Embed the turns not embedded yet, in one batch; returns their ``(n, dim)`` vectors."""
        new = [t["content"] for t in self.turns[len(self.vectors) :]]
        if not new:
            return np.zeros((0, self.vectors.shape[1]), dtype=np.float32)
        fresh = self.embed(new)  # (n_new, dim)
        self.vectors = fresh if not len(self.vectors) else np.vstack([self.vectors, fresh])
        return fresh

    def search(self, query: str, k: int | None = None) -> list[tuple[int, float]]:
        """(turn index, cosine) of the ``k`` turns most similar to ``query``, best first."""
        from llmlab.search.embeddings import embed

        k = self.k if k is None else positive_int(k, "k", "8")
        if not query.strip():
            raise ValueError("query is empty: pass the user's next message to search memory with.")
        self._embed_new()
        if not len(self.vectors):
            return []
        if query not in self.known:  # a new question: embedded alone, never written to disk
            self.known[query] = embed([query], model=self.embedder)[0]  # (dim,)
        scores = self.vectors @ self.known[query]  # (turns,) = (turns, dim) @ (dim,)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(i), float(scores[i])) for i in order]

    def _context(self, query: str, budget: int) -> list[Message]:
        header = "Earlier in this conversation:"
        lines, used = {}, self.count(header) + MESSAGE_OVERHEAD
        for i, _ in self.search(query):
            line = f"{self.turns[i]['role']}: {self.turns[i]['content']}"
            if used + self.count(line) + 1 <= budget:
                lines[i], used = line, used + self.count(line) + 1
        if not lines:
            return []
        return [
            {"role": "system", "content": "\n".join([header] + [lines[i] for i in sorted(lines)])}
        ]


def preload_vectors(memories: Sequence[Memory], texts: Sequence[str]) -> int:
    """Embed ``texts`` once for every ``VectorMemory`` in ``memories`` (one batch per embedder;
    other memories are skipped). Returns how many distinct texts were embedded or read back.

    ``preload_vectors(mems, turns + questions)`` turns 4 x 12 small embedding calls into one.
    """
    vector_mems = [m for m in memories if isinstance(m, VectorMemory)]
    unique = list(dict.fromkeys(texts))
    groups: dict[tuple[str, bool], list[VectorMemory]] = {}
    for m in vector_mems:
        groups.setdefault((m.model_name, m.cache), []).append(m)
    for group in groups.values():
        group[0].embed(unique)
        for m in group[1:]:
            m.known.update(group[0].known)
    return len(unique) if groups else 0


SCHEMA = """CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session TEXT NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (datetime('now')),
    embedding BLOB  -- float32 little-endian, one value per dimension; NULL until embedded
);"""


class SQLiteMemory(VectorMemory):
    """A ``VectorMemory`` kept in a SQLite file: every session's turns, reloaded on open.
    The vectors live in the file, so the on-disk embedding cache is not used."""

    def __init__(
        self,
        path: str | Path,
        session: str = "default",
        k: int = 8,
        embedder: Any = None,
        count: Callable[[str], int] | None = None,
    ) -> None:
        super().__init__(k, embedder, count, cache=False)
        if not isinstance(session, str) or not session.strip():
            raise ValueError(f"session must be a non-empty name, got {session!r}.")
        self.path, self.session = Path(path), session
        self.db = sqlite3.connect(self.path)
        self.db.executescript(SCHEMA)
        stored = dict(self.db.execute("SELECT key, value FROM meta"))
        if stored.get("embedding_model", self.model_name) != self.model_name:
            self.db.close()
            raise ModelMismatchError(
                f"{self.path} was written with embeddings from {stored['embedding_model']!r}, but "
                f"this memory embeds with {self.model_name!r}: their vectors are not comparable. "
                f"Open it with embedder=llmlab.load_embedder({stored['embedding_model']!r}), or "
                "use a new file."
            )
        with self.db:
            self.db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('embedding_model', ?)", (self.model_name,)
            )
        rows = self.db.execute(
            "SELECT id, role, content, embedding FROM turns ORDER BY id"
        ).fetchall()
        self.ids = [r[0] for r in rows]
        self.turns = [{"role": r[1], "content": r[2]} for r in rows]
        blobs = [r[3] for r in rows]
        done = len(blobs) if None not in blobs else blobs.index(None)  # embedded prefix
        if done:
            self.vectors = np.stack([np.frombuffer(b, dtype="<f4") for b in blobs[:done]])
        self._embed_new()

    def add(self, role: str, content: str) -> None:
        """Remember one turn and write it to the file at once (embedded at the next search)."""
        super().add(role, content)
        with self.db:
            cur = self.db.execute(
                "INSERT INTO turns (session, role, content) VALUES (?, ?, ?)",
                (self.session, role, content),
            )
        self.ids.append(cur.lastrowid)

    def _embed_new(self) -> np.ndarray:
        start = len(self.vectors)
        fresh = super()._embed_new()  # (n_new, dim)
        with self.db:
            self.db.executemany(
                "UPDATE turns SET embedding = ? WHERE id = ?",
                [
                    (v.astype("<f4").tobytes(), i)
                    for v, i in zip(fresh, self.ids[start:], strict=True)
                ],
            )
        return fresh

    def close(self) -> None:
        """Close the file (every turn is already saved)."""
        self.db.close()

    def __enter__(self) -> SQLiteMemory:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
