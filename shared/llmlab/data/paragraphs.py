"""Ingest a folder of notes: find the ``.md``/``.txt`` files and cut them into paragraphs.

A search engine returns *passages*, not whole files: a paragraph is small enough for one
embedding (all-MiniLM-L6-v2 reads at most 256 tokens, about 180 words; the rest is ignored) and
specific enough to be a useful answer. Each one is a ``llmlab.data.documents.Passage``: it
remembers its file, character offsets and line numbers, so a hit can point you to the exact spot.

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
from dataclasses import asdict
from pathlib import Path

from llmlab.data.documents import Document, Passage

EXTENSIONS = (".md", ".txt")
SKIP_DIRS = {"node_modules", "__pycache__", "site-packages"}
HEADING = re.compile(r"#{1,6}\s")  # "## Setup"
LIST_ITEM = re.compile(r"([-*+]|\d+[.)])\s")  # "- item", "* item", "1. item" (not indented)
MAX_CHARS = 1200  # ~250 tokens of English prose: longer paragraphs are cut at line breaks
PASSAGE_FORMAT = (
    2  # 2: Passage(source, start, end, first_line, last_line); a cache keyed by it rebuilds
)


def split_paragraphs(text: str, max_chars: int = MAX_CHARS) -> list[tuple[int, int, str]]:
    """Split text into ``(first_line, last_line, paragraph)``, lines 1-based.

    A paragraph ends at a blank line; a markdown heading or a top-level list item ("- ", "1. ")
    starts a new one. A paragraph is its lines exactly as written, from the first to the last
    (so the blank line between a heading and its paragraph stays in).
    ``split_paragraphs("a\\nb\\n\\nc") -> [(1, 2, "a\\nb"), (4, 4, "c")]``
    """
    lines = text.split("\n")
    blocks: list[list[tuple[int, str]]] = []  # each block: [(line_no, line), ...]
    current: list[tuple[int, str]] = []
    in_fence = False
    for no, line in enumerate(lines, start=1):
        fence = line.lstrip().startswith(("```", "~~~"))
        starts_block = not in_fence and (HEADING.match(line) or LIST_ITEM.match(line))
        if fence:
            in_fence = not in_fence
        if (not line.strip() and not in_fence) or starts_block:
            if current:
                blocks.append(current)
            current = []
        if line.strip() or in_fence:
            current.append((no, line))
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
            first, last = piece[0][0], piece[-1][0]
            out.append((first, last, "\n".join(lines[first - 1 : last])))  # blank lines kept
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
        doc = Document(path=path.relative_to(root).as_posix(), text=text)
        for first, _, para in split_paragraphs(text, max_chars):
            start = doc.line_starts[first - 1]
            passages.append(doc.passage(start, start + len(para)))
    return passages


def fingerprint(folder: str | Path, extensions: tuple[str, ...] = EXTENSIONS) -> str:
    """A hash of (relative path, size, modification time) of each note file: changes when any file
    does (and when ``PASSAGE_FORMAT``, the layout of what is stored per passage, does)."""
    root = Path(folder)
    entries: list = [PASSAGE_FORMAT]
    for path in iter_files(root, extensions):
        st = path.stat()
        entries.append([path.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns])
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def passage_metadata(p: Passage) -> dict:
    """What a search index stores with a passage's text: ``source``, ``start``, ``end``,
    ``first_line``, ``last_line``."""
    meta = asdict(p)
    del meta["text"]
    return meta
