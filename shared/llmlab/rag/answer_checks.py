"""Checking a generated answer against the passages it was given: nothing unsupported gets through.

A 135M model writes fluent sentences with invented details ("use the ``--cert-bundle`` option"
when the file says ``--cert``). So each sentence of a generated answer (each code block counts
as one) is checked against the retrieved passages before anything is shown as checked:

- ``check_citations(text, n)``: citations ``[k]`` of passages that were not retrieved are removed.
- ``exact_terms(sentence)``: what must appear verbatim in a source: flags (``--cert``), code
  (``pip freeze``), names with dots or slashes (``~/.netrc``), numbers and capitalised names.
- ``support_lines(sentence, doc, passage)``: the lines of the passage that support the sentence
  best (``llmlab.rag.extractive.answer_units`` inside the passage) and how well: the share of
  its content words found there (``llmlab.evaluation.metrics.support_score``), 0 if an exact
  term is missing.
- ``check_answer(text, hits, documents)``: every sentence checked against the passages it cites
  (or all of them if it cites none). A supported sentence is kept and cites the *lines* that
  support it, renumbered ``[1]``, ``[2]`` in order; an unsupported one is removed from the
  checked answer and reported. A citation never dresses up a claim no passage supports.
- ``cut_at_boundary(text)``: an answer cut off by the token limit ends at its last whole
  sentence or block, never inside an open code fence.

The support test is a word-overlap proxy: it catches invented flags, file names and numbers
(exact terms) and sentences about words the passage never uses; it cannot see negation ("is"
vs "is not") or a faithful paraphrase. An entailment model would do better; none ships offline.

Leaves out: checking across sentences (a claim split over two), and generating a better answer
when a sentence fails (``mode="extract"`` answers from the lines themselves).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from llmlab.data.documents import Document, Passage
from llmlab.evaluation.metrics import STOPWORDS, normalize_answer, support_score
from llmlab.rag.answering import CITATION, extract_citations
from llmlab.rag.citations import key_terms
from llmlab.rag.extractive import answer_units
from llmlab.search.chunking import sentence_spans

MIN_SUPPORT = 0.5  # a sentence is supported if half its content words are in its lines
FENCE = re.compile(r"^\s*(```|~~~)", re.MULTILINE)
_CODE_TERM = re.compile(
    r"`([^`\n]+)`"  # `code`
    r"|(?<![\w-])(--?[A-Za-z][\w-]*)"  # --flag, -v
    r"|(?<![\w/.~])((?:~|\.{1,2})?/[\w./-]+|\.[A-Za-z][\w.-]+\b|\w+(?:[._/]\w+)+)"  # paths, a.b_c
)


@dataclass
class SentenceCheck:
    """One sentence (or code block) of a generated answer and what the check found.

    ``cites``: the passages (1-based, as in the prompt) the model cited; ``support``: share of
    its content words in its best lines (None: a fragment with nothing to check); ``lines``:
    those lines; ``added``: the model cited nothing and the checker found the lines."""

    sentence: str
    cites: list[int]
    support: float | None
    supported: bool
    added: bool = False
    lines: Passage | None = None


def check_citations(text: str, n_passages: int) -> tuple[str, list[int]]:
    """``text`` without citations of passages that do not exist, and the numbers removed.

    ``check_citations("Yes [1][7].", 3) -> ("Yes [1].", [7])``.
    """
    removed: list[int] = []

    def keep(m: re.Match) -> str:
        nums = [int(x) for x in m.group(1).split(",")]
        good = [n for n in nums if 1 <= n <= n_passages]
        removed.extend(n for n in nums if n not in good and n not in removed)
        return f"[{', '.join(map(str, good))}]" if good else ""

    cleaned = CITATION.sub(keep, text)  # "Yes [7]." -> "Yes ." -> "Yes." (but ".venv" stays)
    return re.sub(r"[ \t]+([.,;:!?])(?=\s|$)", r"\1", cleaned).strip(), removed


def content_words(text: str) -> list[str]:
    """Lower-cased words that are not stopwords: ``content_words("How do I undo it?") -> ['how', 'undo', 'it']``."""
    return [w for w in re.findall(r"[a-z0-9_]+", text.lower()) if w not in STOPWORDS]


def exact_terms(sentence: str) -> set[str]:
    """What a source must contain word for word for ``sentence`` to be supported (lower case).

    ``exact_terms("Use the `--cert-bundle` flag with pip.") -> {'--cert-bundle'}`` (and
    capitalised names and numbers, as ``llmlab.rag.citations.key_terms``).
    """
    text = CITATION.sub("", sentence).strip()
    found = {next(g for g in m.groups() if g).strip().lower() for m in _CODE_TERM.finditer(text)}
    opening = re.sub(r"^\W*\w", lambda m: m.group().lower(), text)  # "Use ..." is no name
    return {t for t in found if t} | key_terms(opening)


def _has(term: str, text: str) -> bool:
    if re.fullmatch(r"[\w]+", term):  # a word: it must be a whole word there
        return re.search(rf"(?<![\w-]){re.escape(term)}(?![\w-])", text) is not None
    return term in text


def support(sentence: str, text: str) -> float:
    """Share of ``sentence``'s content words in ``text``; 0 if an exact term is missing there."""
    claim = CITATION.sub("", sentence)
    low, plain = text.lower(), normalize_answer(text)  # "2.16" is "216" in key_terms' spelling
    if not all(_has(t, low) or _has(t, plain) for t in exact_terms(claim)):
        return 0.0
    try:
        return support_score(claim, text)
    except ValueError:  # only stopwords
        return 0.0


def support_lines(sentence: str, doc: Document, passage: Passage) -> tuple[float, Passage]:
    """The lines of ``passage`` (a piece of ``doc``) that support ``sentence`` best, and how well."""
    units = [u for u in answer_units(doc.text) if u.end > passage.start and u.start < passage.end]
    spans = [(max(u.start, passage.start), min(u.end, passage.end)) for u in units]
    spans = [(a, b) for a, b in spans if b > a] or [(passage.start, passage.end)]
    scored = [(support(sentence, doc.text[a:b]), a, b) for a, b in spans]
    best, a, b = max(scored, key=lambda s: (s[0], -(s[2] - s[1])))  # equal support: fewer lines
    if best < MIN_SUPPORT:  # the sentence may combine two units: try the whole passage
        whole = support(sentence, passage.text)
        if whole > best:
            best, a, b = whole, passage.start, passage.end
    return best, doc.passage(a, b)


def segments(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``text``; a fenced code block is one segment."""
    out, pos = [], 0
    fences = [m.start() for m in FENCE.finditer(text)]
    for open_, close in zip(fences[::2], fences[1::2], strict=False):
        end = text.find("\n", close)
        end = len(text) if end == -1 else end
        out += sentence_spans(text, pos, open_) if open_ > pos else []
        out.append((open_, end))
        pos = end
    if pos < len(text):
        out += sentence_spans(text, pos, len(text))
    return [(a, b) for a, b in out if text[a:b].strip()]


def check_answer(
    text: str,
    hits: Sequence[Any],
    documents: Callable[[str], Document],
    min_support: float = MIN_SUPPORT,
) -> tuple[str, list[SentenceCheck], list[Passage]]:
    """Check each sentence of ``text`` against the passages of ``hits`` (see the module docstring).

    Returns the checked answer (supported sentences only, each citing ``[k]``: its lines are
    ``lines[k - 1]``), one ``SentenceCheck`` per sentence, and those lines.
    """
    passages = [h.passage for h in hits]
    checks: list[SentenceCheck] = []
    kept: list[str] = []
    lines: list[Passage] = []
    for a, b in segments(text):
        sentence = text[a:b].strip()
        cites = extract_citations(sentence, len(passages))
        plain = CITATION.sub("", sentence).strip()
        if len(content_words(plain)) < 2 and not FENCE.match(plain):
            checks.append(
                SentenceCheck(sentence=sentence, cites=cites, support=None, supported=True)
            )
            kept.append(plain)
            continue
        pool = [passages[n - 1] for n in cites] or passages
        found = [support_lines(plain, documents(p.source), p) for p in pool]
        score, where = max(found, key=lambda f: f[0]) if found else (0.0, None)
        ok = where is not None and score >= min_support
        checks.append(
            SentenceCheck(
                sentence=sentence,
                cites=cites,
                support=score,
                supported=ok,
                added=ok and not cites,
                lines=where,
            )
        )
        if ok:
            if where not in lines:
                lines.append(where)
            body, end = re.match(r"(.*?)\s*([.!?:]?)$", plain, re.DOTALL).groups()
            cite = f"[{lines.index(where) + 1}]"
            kept.append(f"{plain}\n{cite}" if FENCE.match(plain) else f"{body} {cite}{end}")
    while kept and kept[-1].endswith(":"):  # "Here's how:" with nothing after it
        kept.pop()
    cited = [int(n) for k in kept for n in re.findall(r"\[(\d+)\]", k)]
    del lines[max(cited, default=0) :]  # lines only a dropped "Here's how:" cited
    return _join(kept), checks, lines


def _join(parts: list[str]) -> str:
    out = ""
    for p in parts:
        block = FENCE.match(p) is not None
        sep = "" if not out else "\n\n" if block or FENCE.search(out.splitlines()[-1]) else " "
        out += sep + p
    return out.strip()


def cut_at_boundary(text: str) -> str:
    """``text`` ended at its last complete sentence or block: an open code fence is dropped.

    ``cut_at_boundary("Use copy().\\n```python\\nx = y.co") -> "Use copy()."``
    """
    fences = [m.start() for m in FENCE.finditer(text)]
    if len(fences) % 2:  # a fence was opened and never closed: drop the unfinished block
        text = text[: fences[-1]]
    text = text.rstrip()
    if not text or text.endswith((".", "!", "?", ":", "```", "~~~", ")", "]")):
        return text
    ends = [m.end() for m in re.finditer(r"[.!?](?:\s*\[\d+(?:,\s*\d+)*\])*(?=\s)", text)]
    last_block = max((m.end() for m in re.finditer(r"^\s*(```|~~~)\s*$", text, re.M)), default=0)
    cut = max([e for e in ends] + [last_block], default=0)
    return text[:cut].rstrip() if cut else text
