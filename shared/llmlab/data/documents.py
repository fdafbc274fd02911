"""What search and answers are made of: a document, and a passage located in it.

LLM Lab uses one vocabulary from Phase 1's search to Phase 5's research agent:

- a **Document** is a whole file's text with its path (``notes/setup.md``), defined here;
- a **Chunk** is a piece of a text by character offsets (``llmlab.search.chunking.Chunk``):
  what chunking cuts, before anyone knows which file the text came from;
- a **Passage** is a chunk located in a document, defined here: its source path, character
  offsets, first and last line, and text. It is what an index stores and what an answer cites:
  ``passage.where`` is ``notes/setup.md:12-15``, a place a person can open;
- a **Hit** is a scored search result (``llmlab.search.semantic_index.Hit``): a text and its
  score, plus the Passage when the index knows where the text sits.

``Document.passage(start, end)`` makes the Passage of ``text[start:end]``, line numbers included:
``Document(path="a.md", text="# A\\nOne.\\nTwo.\\n").passage(4, 13).where -> 'a.md:2-3'``.

Leaves out: reading files (``llmlab.data.readers``), cutting them (``llmlab.data.paragraphs`` and
``llmlab.search.chunking``), and pages or PDFs (a line is the only unit of place here).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class Passage:
    """A piece of a document: ``text == document.text[start:end]``; lines are 1-based, inclusive.

    ``source`` is the document's path, relative to the folder it was read from.
    """

    source: str
    start: int
    end: int
    first_line: int
    last_line: int
    text: str

    @property
    def where(self) -> str:
        """``notes/a.md:12-15`` (or ``notes/a.md:12`` for one line)."""
        if self.first_line == self.last_line:
            return f"{self.source}:{self.first_line}"
        return f"{self.source}:{self.first_line}-{self.last_line}"


@dataclass(frozen=True)
class Document:
    """One file's text. ``path`` is relative to the folder it was read from (``notes/setup.md``);
    ``encoding`` is how its bytes were decoded."""

    path: str
    text: str
    encoding: str = "utf-8"

    @cached_property
    def line_starts(self) -> list[int]:
        """The character offset where each line starts: ``[0, 4, ...]``."""
        return [0] + [m.end() for m in re.finditer("\n", self.text)]

    def line_of(self, offset: int) -> int:
        """The 1-based line holding character ``offset``."""
        return bisect.bisect_right(self.line_starts, offset)

    def lines(self, start: int, end: int) -> tuple[int, int]:
        """First and last line (1-based, inclusive) of ``text[start:end]``."""
        return self.line_of(start), self.line_of(max(start, end - 1))

    def passage(self, start: int, end: int) -> Passage:
        """The Passage of ``text[start:end]``: this document's path, the offsets, the lines."""
        if not 0 <= start < end <= len(self.text):
            raise ValueError(
                f"A passage needs 0 <= start < end <= {len(self.text)} (the text's length), "
                f"got start={start}, end={end}."
            )
        first, last = self.lines(start, end)
        return Passage(
            source=self.path,
            start=start,
            end=end,
            first_line=first,
            last_line=last,
            text=self.text[start:end],
        )
