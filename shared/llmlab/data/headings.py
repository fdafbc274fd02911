"""Section headings of reST and Markdown text: where a document's sections start and end.

Covers ``find_headings(text)``: every reST heading (a title line underlined, optionally also
overlined, with a repeated punctuation character) and every Markdown ``#`` heading, with the
character span of its lines and its level marker. ``llmlab.search.chunking`` cuts at them (the
"headings" strategy) and ``llmlab.data.datasets`` splits the Python FAQ pages into questions.

Leaves out: setext Markdown headings (a title underlined with ``===``: read as reST, the same
span), HTML headings, and headings inside code blocks (a ``# comment`` line in a fenced block
counts as a heading).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Heading:
    """A section heading: the heading lines span ``text[start:end]``; ``level`` is its marker."""

    title: str
    start: int
    end: int
    level: str  # the reST underline character ("=", "-", ...) or "#" * n for Markdown


_UNDERLINE = re.compile(r"([=\-~^*#+\"'`])\1{2,}[ \t]*$")  # a reST adornment line
_MD_HEADING = re.compile(r"(#{1,6})[ \t]+(\S.*?)[ \t]*#*[ \t]*$")


def find_headings(text: str) -> list[Heading]:
    """Every reST heading (title + underline, optional overline) and Markdown ``#`` heading."""
    lines = text.splitlines(keepends=True)
    offsets = np.cumsum([0] + [len(line) for line in lines]).tolist()
    found, i = [], 0
    while i < len(lines):
        line = lines[i].rstrip("\n")
        if (m := _MD_HEADING.match(line)) and not _UNDERLINE.match(line):
            found.append(
                Heading(title=m.group(2), start=offsets[i], end=offsets[i + 1], level=m.group(1))
            )
            i += 1
            continue
        over = _UNDERLINE.match(line) is not None
        j = i + 1 if over else i  # the title line
        if j + 1 < len(lines) and lines[j].strip() and not _UNDERLINE.match(lines[j]):
            title = lines[j].rstrip()
            under = _UNDERLINE.match(lines[j + 1])
            if under and len(lines[j + 1].rstrip()) >= len(title) and (over or title[0] != " "):
                found.append(
                    Heading(
                        title=title.strip(),
                        start=offsets[i],
                        end=offsets[j + 2],
                        level=under.group(1),
                    )
                )
                i = j + 2
                continue
        i += 1
    return found
