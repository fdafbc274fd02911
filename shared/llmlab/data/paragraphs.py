"""Ingest a folder of notes: find the ``.md``/``.txt`` files and cut them into paragraphs.

A search engine returns *passages*, not whole files: a paragraph is small enough for one
embedding (all-MiniLM-L6-v2 reads at most 256 tokens, about 180 words; the rest is ignored) and
specific enough to be a useful answer. Each passage remembers its file and line numbers so a hit
can point you to the exact spot.

Covers: walking a folder (skipping hidden folders such as ``.git`` and ``.venv``), splitting text
at blank lines, headings and top-level list items (a heading sticks to the paragraph under it;
a fenced code block is never split), cutting over-long paragraphs at line breaks, and a fingerprint of the folder
(paths + sizes + modification times) that tells a cache when to rebuild.

Leaves out: PDFs, HTML, notebooks, and token-aware or overlapping chunking (phase 4, RAG).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

EXTENSIONS = (".md", ".txt")
SKIP_DIRS = {"node_modules", "__pycache__", "site-packages"}
HEADING = re.compile(r"#{1,6}\s")  # "## Setup"
LIST_ITEM = re.compile(r"([-*+]|\d+[.)])\s")  # "- item", "* item", "1. item" (not indented)
MAX_CHARS = 1200  # ~250 tokens of English prose: longer paragraphs are cut at line breaks


@dataclass
class Passage:
    """One paragraph of one file: ``file`` is relative to the folder, lines are 1-based, inclusive."""

    text: str
    file: str
    line_start: int
    line_end: int

    @property
    def where(self) -> str:
        """``notes/a.md:12-15`` (or ``notes/a.md:12`` for one line)."""
        lines = (
            f"{self.line_start}"
            if self.line_start == self.line_end
            else f"{self.line_start}-{self.line_end}"
        )
        return f"{self.file}:{lines}"


def split_paragraphs(text: str, max_chars: int = MAX_CHARS) -> list[tuple[int, int, str]]:
    """Split text into ``(line_start, line_end, paragraph)``, lines 1-based.

    A paragraph ends at a blank line; a markdown heading or a top-level list item ("- ", "1. ")
    starts a new one. ``split_paragraphs("a\\nb\\n\\nc") -> [(1, 2, "a\\nb"), (4, 4, "c")]``
    """
    blocks: list[list[tuple[int, str]]] = []  # each block: [(line_no, line), ...]
    current: list[tuple[int, str]] = []
    in_fence = False
    for no, line in enumerate(text.splitlines(), start=1):
        fence = line.lstrip().startswith(("```", "~~~"))
        starts_block = not in_fence and (HEADING.match(line) or LIST_ITEM.match(line))
        if fence:
            in_fence = not in_fence
        if (not line.strip() and not in_fence) or starts_block:
            if current:
                blocks.append(current)
            current = []
        if line.strip() or in_fence:
            current.append((no, line.rstrip()))
    if current:
        blocks.append(current)

    # A block made only of markdown headings ("## Setup") is joined to the block below it.
    merged: list[list[tuple[int, str]]] = []
    carry: list[tuple[int, str]] = []
    for block in blocks:
        if all(HEADING.match(line) for _, line in block):
            carry += block
            continue
        merged.append(carry + block)
        carry = []
    if carry:
        merged.append(carry)

    out: list[tuple[int, int, str]] = []
    for block in merged:
        for piece in _cut(block, max_chars):
            out.append((piece[0][0], piece[-1][0], "\n".join(line for _, line in piece)))
    return out


def _cut(block: list[tuple[int, str]], max_chars: int) -> Iterator[list[tuple[int, str]]]:
    """Cut a block into runs of whole lines of at most ``max_chars`` (a longer single line stays whole)."""
    piece: list[tuple[int, str]] = []
    size = 0
    for no, line in block:
        if piece and size + len(line) > max_chars:
            yield piece
            piece, size = [], 0
        piece.append((no, line))
        size += len(line) + 1
    if piece:
        yield piece


def _skip(dirname: str) -> bool:
    return dirname.startswith(".") or dirname in SKIP_DIRS or dirname.endswith(".egg-info")


def iter_files(folder: str | Path, extensions: tuple[str, ...] = EXTENSIONS) -> list[Path]:
    """The note files under ``folder``, sorted, skipping hidden folders/files and tool folders."""
    root = Path(folder)
    if not root.exists():
        raise ValueError(
            f"{str(folder)!r} does not exist. Give the path of a folder of .md/.txt notes."
        )
    if not root.is_dir():
        raise ValueError(
            f"{str(folder)!r} is not a folder. Give the path of a folder of .md/.txt notes."
        )
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        # prune in place, so os.walk never descends into .git, .venv, node_modules, ...
        dirnames[:] = [d for d in dirnames if not _skip(d)]
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in extensions:
                files.append(Path(dirpath) / name)
    return sorted(files)


def ingest_folder(
    folder: str | Path, max_chars: int = MAX_CHARS, extensions: tuple[str, ...] = EXTENSIONS
) -> list[Passage]:
    """Every paragraph of every ``.md``/``.txt`` file under ``folder``, in file and line order."""
    root = Path(folder)
    passages = []
    for path in iter_files(root, extensions):
        text = path.read_text(encoding="utf-8", errors="replace")
        rel = path.relative_to(root).as_posix()
        for start, end, para in split_paragraphs(text, max_chars):
            passages.append(Passage(text=para, file=rel, line_start=start, line_end=end))
    return passages


def fingerprint(folder: str | Path, extensions: tuple[str, ...] = EXTENSIONS) -> str:
    """A hash of (relative path, size, modification time) of each note file: changes when any file does."""
    root = Path(folder)
    entries = []
    for path in iter_files(root, extensions):
        st = path.stat()
        entries.append([path.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns])
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def passage_metadata(p: Passage) -> dict:
    """The metadata a search index stores for a passage: file and line numbers."""
    meta = asdict(p)
    del meta["text"]
    return meta
