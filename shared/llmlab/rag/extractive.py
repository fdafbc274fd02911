"""Extractive answers: the answer is lines copied from your documents, chosen by code.

A 135M model copies well and reasons badly. So here nothing is generated: the answer is the
passage of a document that answers the question, quoted exactly, and its citation is the lines
it was copied from. Faithful by construction: every word shown is in the file, at the lines cited.

Covers:
- ``answer_units(text)``: a document cut into the pieces an answer can be: a paragraph with the
  code block or list it introduces, a list item, a sentence of a long paragraph; headings, reST
  labels and directives, badges and link definitions are left out (they are not answers). Each
  unit remembers the title of its section.
- ``coverage(question, text, idf)``: the share of the question's content words (weighted by how
  rare they are in the folder) that the text contains; a word matches on its first five letters
  ("compile" = "compiling").
- ``Extractor(index).best(question, hits)``: the units of the retrieved passages, scored by
  ``score = cosine(question, unit) + COVERAGE_WEIGHT * coverage``; the best one, its score, and
  the runner-up scores (``llmlab.rag.docchat`` decides from them whether to answer at all).

Leaves out: stitching units from two places into one answer, paraphrasing, and answers that are
not written anywhere (a yes/no the text only implies): those need a generator (``mode="generate"``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmlab.data.documents import Document, Passage
from llmlab.data.headings import find_headings
from llmlab.search.chunking import sentence_spans

MAX_UNIT_CHARS = 700  # a paragraph and its code block; longer prose is cut into sentences
LONG_PROSE = 450  # a paragraph longer than this is offered sentence by sentence as well
COVERAGE_WEIGHT = 0.3  # tuned on the tune set (phase-4-rag/data/docs-eval/tune.jsonl)
LITERAL_WEIGHT = 0.1  # a unit you can act on (a command, a flag, code, an address) answers "how"
STEM = 5  # words match on their first five letters: "compile" = "compiling"
MERGE_FROM, MERGE_GAP, MAX_ANSWER = 3, 0.2, 1000  # a top-3 neighbour within 0.2 joins the answer
STOP = frozenset(
    "a an the is are was were be been being of in on at to for from by with and or as it its "
    "this that these those i you we my your our me do does did doing has have had can could "
    "will would should shall may might must how what which who whom why when where there here "
    "if then than so not no yes into about any all some each use using used get make need want "
    "way ways".split()
)

_NOISE = [
    re.compile(
        r"\s*\.\. _[^:]*:(\s+\S+)?\s*$"
    ),  # a reST label or link target: ".. _pip: https://..."
    re.compile(r"\s*\.\. \|[^|]+\|"),  # a reST substitution: ".. |logo| image:: logo.png"
    re.compile(
        r"\s*\.\. [\w:-]+::\s*\S*\s*$"
    ),  # a reST directive with no text: ".. code-block:: bash"
    re.compile(r"\s*:[\w-]+:(\s.*)?$"),  # a directive option: ":caption: hello.py"
    re.compile(r"\s*\[[^\]]+\]:\s*\S+.*$"),  # a markdown link definition: "[lz4]: https://..."
    re.compile(r"\s*\[?!\[.*$"),  # a badge or an image: "[![Build Status](...)](...)"
    re.compile(r"\s*</?[a-zA-Z][^>]*>\s*(<[^>]*>\s*)*$"),  # a line of HTML tags
    re.compile(r"[\s|:+=-]*$"),  # a table rule or a blank-ish line: "|---|---|"
    re.compile(r".*-\*-.*-\*-\s*$"),  # an editor mode line: "-*- text -*-"
    re.compile(r"\s*#\s*%%.*$"),  # a notebook cell marker written by llmlab.data.readers
]
_LIST_ITEM = re.compile(r"\s*([-*+]|\d+[.)])\s+\S")
_LITERAL = re.compile(
    r"`[^`\n]+`"  # inline code: `x` or ``x``
    r"|(?<![\w-])--?[a-zA-Z][\w-]*"  # a flag: --cert, -v
    r"|^\s*(\$|>>>|%) "  # a shell or Python prompt
    r"|^(    |\t)\S"  # an indented code line
    r"|[\w.+-]+@[\w-]+\.[\w.]+"  # an e-mail address
    r"|(^|\s)(~|\.{0,2})/[\w./-]+|(^|\s)\.\w[\w.-]*rc\b"  # a path, a dotfile: ~/.netrc
    r"|\b\w+\(",  # a call: foo(
    re.MULTILINE,
)
_CODE_START = ("$ ", ">>> ", "```", "~~~", "% ")


@dataclass(frozen=True)
class Unit:
    """A span of a document that can be an answer: ``text[start:end]``, its kind
    (``"prose"``, ``"code"``, ``"list"`` or ``"sentence"``) and the title of its section."""

    start: int
    end: int
    kind: str
    heading: str


def _noise(line: str) -> bool:
    return any(p.match(line) for p in _NOISE)


def _code(lines: list[str]) -> bool:
    first = lines[0]
    return first.startswith(("    ", "\t")) or first.lstrip().startswith(_CODE_START)


def _blocks(text: str, heads: Sequence[Any] = ()) -> list[tuple[int, int, list[str]]]:
    """``(start, end, lines)`` of each run of non-blank, non-noise lines outside the headings
    ``heads``; a fenced code block stays whole across its blank lines."""
    out, cur, start, offset, fence = [], [], 0, 0, False
    spans = [(h.start, h.end) for h in heads]
    for line in text.split("\n"):
        heading = any(a <= offset < b for a, b in spans)  # a reST underline "~~~~" is no fence
        is_fence = not heading and line.lstrip().startswith(("```", "~~~"))
        if (not fence and (heading or not line.strip() or _noise(line))) and not is_fence:
            if cur:
                out.append((start, offset - 1, cur))
            cur = []
        else:
            if not cur:
                start = offset
            cur.append(line)
            if is_fence:
                fence = not fence
        offset += len(line) + 1
    if cur:
        out.append((start, min(offset - 1, len(text)), cur))
    return out


def _indent(line: str) -> int:
    return len(line.expandtabs(8)) - len(line.expandtabs(8).lstrip())


def _trim(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def answer_units(text: str) -> list[Unit]:
    """The units of ``text`` an answer can be, in order (see the module docstring).

    ``[text[u.start:u.end] for u in answer_units("# Install\\n\\nRun:\\n\\n    pip install x\\n")]``
    -> ``['Run:\\n\\n    pip install x']`` (the heading is the unit's ``heading``, not a unit).
    """
    heads = find_headings(text)
    starts = [h.start for h in heads]

    def section(pos: int) -> str:
        i = int(np.searchsorted(starts, pos, side="right")) - 1
        return heads[i].title if i >= 0 else ""

    units: list[Unit] = []
    blocks = _blocks(text, heads)
    i = 0
    while i < len(blocks):
        a, b, lines = blocks[i]
        kind = "code" if _code(lines) else "list" if _LIST_ITEM.match(lines[0]) else "prose"
        own_end, j = b, i + 1
        if kind != "code":  # a paragraph or list item takes the code (or indented text) under it
            body = _indent(lines[0]) + (2 if kind == "list" else 0)
            intro = lines[-1].rstrip().endswith(":")  # "Run:" or "the steps are::" + what follows
            while j < len(blocks) and blocks[j][1] - a <= MAX_UNIT_CHARS:
                nxt = blocks[j][2]
                listed = intro and _LIST_ITEM.match(nxt[0]) is not None
                if not (
                    _code(nxt)
                    or listed
                    or _indent(nxt[0]) > _indent(lines[0])
                    and (intro or kind == "list" and _indent(nxt[0]) >= body)
                ):
                    break
                b, j = blocks[j][1], j + 1
        head = section(a)
        if kind == "prose" and own_end - a > LONG_PROSE:
            for s, e in sentence_spans(text, a, own_end):
                s, e = _trim(text, s, e)
                if e > s:
                    units.append(Unit(start=s, end=e, kind="sentence", heading=head))
        if b - a <= 3 * MAX_UNIT_CHARS:
            units.append(Unit(start=a, end=b, kind=kind, heading=head))
        i = j
    return units


_HOW = re.compile(r"^\s*(how|where|which)\b|\b(command|option|flag|setting|variable)s?\b", re.I)


def asks_how(question: str) -> bool:
    """A question whose answer is something to do or type: "How do I ...?", "Where ...?",
    "Which option ...?". ``asks_how("Why is Python slow?") -> False``."""
    return _HOW.search(question) is not None


def literal(text: str) -> bool:
    """Whether ``text`` holds something to type or act on: code, a flag, a prompt, an address.

    ``literal("Use the --cert option.") -> True``; ``literal("It is fast.") -> False``.
    """
    return _LITERAL.search(text) is not None


def stems(text: str) -> set[str]:
    """Content words of ``text`` cut to ``STEM`` letters: ``stems("Compiling XZ with debugging")
    -> {'compi', 'xz', 'debug'}``."""
    words = re.findall(r"[a-z0-9][a-z0-9_+-]*", text.lower())
    return {w[:STEM] for w in words if w not in STOP and len(w) > 1}


def coverage(question: str, text: str, idf: Callable[[str], float]) -> float:
    """Share of the question's content words found in ``text``, each weighted by ``idf(stem)``.

    1.0: every word of the question is there; 0.0: none (or the question has no content words).
    """
    want = stems(question)
    total = sum(idf(w) for w in want)
    if total <= 0:
        return 0.0
    return sum(idf(w) for w in want & stems(text)) / total


@dataclass
class Scored:
    """A candidate unit of a document and its score for the question."""

    doc: Document
    unit: Unit
    score: float  # cosine + COVERAGE_WEIGHT * coverage + LITERAL_WEIGHT * (actionable, for "how")
    cosine: float
    coverage: float

    @property
    def text(self) -> str:
        return self.doc.text[self.unit.start : self.unit.end]


@dataclass
class Extract:
    """The answer for a question: the best unit (with a neighbour nearly as good), located."""

    passage: Passage  # the answer's lines in its file: text, offsets, first and last line
    score: float  # the best unit's score: what abstention looks at
    best: Scored
    ranked: list[Scored]  # every candidate, best first


class Extractor:
    """Pick the unit of the retrieved passages that answers a question (no model generates).

    ``documents(source)`` returns a file's ``Document`` (the index's folder is read);
    ``embed(texts)`` returns unit vectors (the index's embedder by default); ``idf(stem)`` how
    rare a word stem is in the folder (from ``corpus_idf``).
    """

    def __init__(
        self,
        documents: Callable[[str], Document],
        embed: Callable[[list[str]], np.ndarray],
        idf: Callable[[str], float],
        *,
        coverage_weight: float = COVERAGE_WEIGHT,
        literal_weight: float = LITERAL_WEIGHT,
    ) -> None:
        self.documents, self.embed, self.idf = documents, embed, idf
        self.coverage_weight, self.literal_weight = coverage_weight, literal_weight
        self._units: dict[tuple[str, int], list[Unit]] = {}

    def units(self, doc: Document) -> list[Unit]:
        """``answer_units`` of a document, computed once per text."""
        key = (doc.path, hash(doc.text))
        if key not in self._units:
            self._units[key] = answer_units(doc.text)
        return self._units[key]

    def candidates(
        self, hits: Sequence[Any], exclude: Collection[tuple[str, int, int]] = ()
    ) -> list[tuple[Document, Unit]]:
        """The units of the sections the hits' passages are in, each once, in hit order;
        ``exclude``: ``(source, start, end)`` spans already answered: no unit inside one is offered.

        A whole section, not only the passage: a chunk often stops a line short of its answer."""
        seen, out = set(), []
        for h in hits:
            p = h.passage
            doc = self.documents(p.source)
            units = self.units(doc)
            near = {u.heading for u in units if u.end > p.start and u.start < p.end}
            done = [(a, b) for src, a, b in exclude if src == p.source]
            for u in units:
                key = (p.source, u.start, u.end)
                inside = u.end > p.start and u.start < p.end
                shown = any(a <= u.start and u.end <= b for a, b in done)
                if (inside or (u.heading in near and u.heading)) and key not in seen and not shown:
                    seen.add(key)
                    out.append((doc, u))
        return out

    def rank(
        self, question: str, hits: Sequence[Any], exclude: Collection[tuple[str, int, int]] = ()
    ) -> list[Scored]:
        """Every candidate unit of ``hits``, scored for ``question``, best first."""
        cands = self.candidates(hits, exclude)
        if not cands:
            return []
        texts = [doc.text[u.start : u.end] for doc, u in cands]
        vectors = self.embed([question, *texts])  # (1 + n, dim), unit length
        cos = vectors[1:] @ vectors[0]  # (n,) cosine of each unit with the question
        cov = np.array(
            [
                coverage(question, f"{u.heading}\n{t}", self.idf)
                for (_, u), t in zip(cands, texts, strict=True)
            ]
        )  # (n,) share of the question's rare words in the unit and its heading
        how = asks_how(question)
        lit = np.array([how and literal(t) for t in texts], dtype=np.float32)  # (n,)
        score = cos + self.coverage_weight * cov + self.literal_weight * lit  # (n,)
        order = np.argsort(-score, kind="stable")
        return [
            Scored(
                doc=cands[i][0],
                unit=cands[i][1],
                score=float(score[i]),
                cosine=float(cos[i]),
                coverage=float(cov[i]),
            )
            for i in order
        ]

    def best(
        self, question: str, hits: Sequence[Any], exclude: Collection[tuple[str, int, int]] = ()
    ) -> Extract | None:
        """The answer to ``question`` from ``hits``: the best unit, joined by a neighbouring unit
        among the next best that scores within ``MERGE_GAP`` (None if the hits hold no unit)."""
        ranked = self.rank(question, hits, exclude)
        return None if not ranked else self.extract(ranked)

    def extract(self, ranked: list[Scored], pick: int = 0) -> Extract:
        """The ``Extract`` around ``ranked[pick]`` (a neighbour nearly as good joins it)."""
        top = ranked[pick]
        start, end = top.unit.start, top.unit.end
        units = self.units(top.doc)
        k = units.index(top.unit)
        for other in ranked[:MERGE_FROM]:  # a neighbour nearly as good joins the answer
            v = other.unit
            if other is top or other.doc.path != top.doc.path or v.kind == "sentence":
                continue
            if v.heading != top.unit.heading:  # another section answers another question
                continue
            near = v in units[max(k - 1, 0) : k + 2]
            span = max(end, v.end) - min(start, v.start)
            if near and other.score >= top.score - MERGE_GAP and span <= MAX_ANSWER:
                start, end = min(start, v.start), max(end, v.end)
                break
        return Extract(
            passage=top.doc.passage(start, end), score=top.score, best=top, ranked=ranked
        )


def corpus_idf(texts: Sequence[str]) -> Callable[[str], float]:
    """``idf(stem)`` over ``texts`` (the folder's passages): ``ln(1 + (N - df + .5) / (df + .5))``;
    a stem the folder never uses gets the highest idf (it is the rarest word there is)."""
    df: dict[str, int] = {}
    for t in texts:
        for s in stems(t):
            df[s] = df.get(s, 0) + 1
    n = len(texts)

    def idf(stem: str) -> float:
        d = df.get(stem, 0)
        return math.log(1 + (n - d + 0.5) / (d + 0.5))

    return idf
