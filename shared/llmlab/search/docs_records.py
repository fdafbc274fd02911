"""What a docs index stores and returns: how files are cut, a passage, a hit, an update report.

- ``Chunker``: the chunking settings (strategy, size in embedder tokens, overlap); its ``key()``
  is saved with the index, so an index cut another way is rebuilt.
- ``DocChunk``: one indexed passage with its file, character span and line numbers.
- ``DocHit``: a retrieved passage with its fused score, dense cosine, BM25 score and row id.
- ``IndexReport``: what ``DocsIndex.update`` did (added, changed, removed, skipped, why rebuilt).

Leaves out: everything that reads, embeds or searches (``llmlab.search.docs_index``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmlab.data.readers import Skipped


@dataclass(frozen=True)
class Chunker:
    """How files are cut: ``llmlab.search.chunking.chunk_text(text, strategy, size, overlap)``."""

    strategy: str = "recursive"
    size: int = 128  # embedder tokens; 5 chunks ~ 700 LM tokens keeps prefill near 2 s on 2 cores
    overlap: int = 0

    def key(self) -> str:
        return f"{self.strategy}/size={self.size}/overlap={self.overlap}"


@dataclass(frozen=True)
class DocChunk:
    """One indexed passage: ``source`` (path relative to the folder), span and lines of the file."""

    source: str
    start: int
    end: int
    start_line: int
    end_line: int
    text: str


@dataclass
class DocHit:
    """A retrieved chunk: fused rank score (RRF), dense cosine (None if dense missed it), BM25,
    and ``id``, the chunk's row in ``DocsIndex.chunks`` / ``.vectors`` (None: not from an index)."""

    chunk: DocChunk
    score: float
    cosine: float | None
    bm25: float | None
    id: int | None = None


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
    n_chunks: int = 0
    embedded: int = 0  # chunks embedded by this update
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
