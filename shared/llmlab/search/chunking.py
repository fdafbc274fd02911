"""Chunking: cutting documents into the pieces a retriever indexes, with exact character offsets.

Covers ``chunk_text(text, strategy, size, overlap)`` with five strategies, all sized in tokens:
- ``"tokens"``: fixed windows of ``size`` tokens, each starting ``size - overlap`` tokens later.
- ``"recursive"``: split on paragraph breaks, then lines, sentence ends, spaces, characters (the
  first separator that makes pieces small enough), then pack neighbours up to ``size``.
- ``"sentences"``: whole sentences packed up to ``size`` (a longer sentence is split recursively).
- ``"headings"``: one chunk per reST / Markdown section (``find_headings``); a section longer
  than ``size`` is split recursively inside itself, so no chunk spans two sections.
- ``"semantic"``: sentences, with a break wherever the embedding similarity of two neighbouring
  sentences drops below the ``threshold`` percentile of the text's neighbour similarities.
Every ``Chunk`` keeps ``start``/``end`` into the original text: ``text[c.start:c.end] == c.text``,
and every non-space character of ``text`` is in some chunk. A chunk knows nothing of files: an
index turns it into a ``llmlab.data.documents.Passage`` with ``Document.passage(c.start, c.end)``.
``Chunker`` is a chunking setting kept as a value (strategy, size, overlap): what an index
stores with its passages, so an index cut another way is rebuilt.

Tokens are counted with the embedder's own WordPiece tokenizer (all-MiniLM-L6-v2), not cl100k:
the embedder silently drops everything past its 256th token, so the size that matters is the
one it counts. ``TokenCounter`` tokenizes a text once and answers "how many tokens in
``text[a:b]``" by bisecting the token start offsets (tokens are counted where they start).

Leaves out: chunk summaries or titles prepended to chunks ("contextual retrieval"), parent /
child chunk hierarchies, and language-specific sentence splitters (a regex is used).
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmlab.data.headings import find_headings

STRATEGIES = ("tokens", "recursive", "sentences", "headings", "semantic")
SEPARATORS = ("\n\n", "\n", ". ", " ", "")  # recursive splitting tries these in order


@dataclass(frozen=True)
class Chunk:
    """A piece of a text by character offsets: ``text == source[start:end]``."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Chunker:
    """How texts are cut: ``chunk_text(text, strategy, size, overlap)`` as one value.

    ``Chunker(size=64).cut("One. Two.")`` = ``chunk_text("One. Two.", "recursive", size=64)``.
    """

    strategy: str = "recursive"
    size: int = 128  # embedder tokens; 5 chunks ~ 700 LM tokens keeps prefill near 2 s on 2 cores
    overlap: int = 0

    def key(self) -> str:
        """``"recursive/size=128/overlap=0"``: saved with an index, compared when it is loaded."""
        return f"{self.strategy}/size={self.size}/overlap={self.overlap}"

    def cut(self, text: str) -> list[Chunk]:
        """``text`` cut with these settings."""
        return chunk_text(text, self.strategy, size=self.size, overlap=self.overlap)


@functools.cache
def embedder_tokenizer() -> Any:
    """The bundled embedder's WordPiece tokenizer (``tokenizers``; no torch needed)."""
    from tokenizers import Tokenizer

    from llmlab.runtime.models import bundled_embedder_path

    tok = Tokenizer.from_file(str(bundled_embedder_path() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


class TokenCounter:
    """Tokenize ``text`` once; ``count(a, b)`` = tokens starting in ``text[a:b]``."""

    def __init__(self, text: str, tokenizer: Any = None):
        tokenizer = embedder_tokenizer() if tokenizer is None else tokenizer
        offsets = tokenizer.encode(
            text, add_special_tokens=False
        ).offsets  # [(start, end)] per token
        self.text = text
        self.starts = [s for s, _ in offsets]
        self.ends = [e for _, e in offsets]

    def __len__(self) -> int:
        return len(self.starts)

    def count(self, start: int, end: int) -> int:
        return bisect.bisect_left(self.starts, end) - bisect.bisect_left(self.starts, start)

    def index(self, char: int) -> int:
        """The index of the first token starting at or after character ``char``."""
        return bisect.bisect_left(self.starts, char)


def count_tokens(text: str) -> int:
    """Embedder tokens in ``text`` (no [CLS]/[SEP]): ``count_tokens("a dog") -> 2``."""
    return len(TokenCounter(text))


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink ``[start, end)`` so it neither starts nor ends with whitespace."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _chunks(text: str, spans: Sequence[tuple[int, int]]) -> list[Chunk]:
    out = []
    for a, b in spans:
        a, b = _trim(text, a, b)
        if a < b:
            out.append(Chunk(text=text[a:b], start=a, end=b))
    return out


def _pack(
    spans: list[tuple[int, int]], counter: TokenCounter, size: int, overlap: int
) -> list[tuple[int, int]]:
    """Merge consecutive pieces into spans of at most ``size`` tokens; each new span repeats the
    last pieces of the previous one while they total at most ``overlap`` tokens."""
    out: list[tuple[int, int]] = []
    cur: list[tuple[int, int]] = []
    for piece in spans:
        if cur and counter.count(cur[0][0], piece[1]) > size:
            out.append((cur[0][0], cur[-1][1]))
            keep: list[tuple[int, int]] = []
            for p in reversed(cur):  # carry the tail of this chunk into the next
                if (
                    counter.count(p[0], (keep or [p])[-1][1]) > overlap
                    or counter.count(p[0], piece[1]) > size
                ):
                    break
                keep.insert(0, p)
            cur = keep
        cur.append(piece)
    if cur:
        out.append((cur[0][0], cur[-1][1]))
    return out


def _split_on(text: str, start: int, end: int, sep: str) -> list[tuple[int, int]]:
    """Pieces of ``text[start:end]`` cut after each ``sep`` (the separator stays with its left piece)."""
    if sep == "":
        return [(i, i + 1) for i in range(start, end)]
    pieces, a = [], start
    while (i := text.find(sep, a, end)) != -1:
        pieces.append((a, i + len(sep)))
        a = i + len(sep)
    if a < end:
        pieces.append((a, end))
    return pieces


def _recursive(
    text: str,
    start: int,
    end: int,
    counter: TokenCounter,
    size: int,
    overlap: int,
    separators: Sequence[str] = SEPARATORS,
) -> list[tuple[int, int]]:
    if counter.count(start, end) <= size:
        return [(start, end)]
    sep = next((s for s in separators if s == "" or s in text[start:end]), "")
    rest = separators[separators.index(sep) + 1 :]
    pieces: list[tuple[int, int]] = []
    for a, b in _split_on(text, start, end, sep):  # pieces still too big go one separator deeper
        pieces += (
            [(a, b)]
            if counter.count(a, b) <= size
            else _recursive(text, a, b, counter, size, overlap, rest)
        )
    return _pack(pieces, counter, size, overlap)


SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")  # a sentence end or a blank line


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence (regex: ``.``/``!``/``?`` + space, or a blank line)."""
    end = len(text) if end is None else end
    spans, a = [], start
    for m in SENTENCE_END.finditer(text, start, end):
        spans.append((a, m.start()))
        a = m.start()
    spans.append((a, end))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def _sentences(
    text: str,
    counter: TokenCounter,
    size: int,
    overlap: int,
    start: int = 0,
    end: int | None = None,
) -> list[tuple[int, int]]:
    pieces = []
    for a, b in sentence_spans(text, start, end):
        pieces += (
            _recursive(text, a, b, counter, size, 0) if counter.count(a, b) > size else [(a, b)]
        )
    return _pack(pieces, counter, size, overlap)


def _sections(text: str, counter: TokenCounter, size: int, overlap: int) -> list[tuple[int, int]]:
    cuts = [0] + [h.start for h in find_headings(text)] + [len(text)]
    spans = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        if a < b:
            spans += _recursive(text, a, b, counter, size, overlap)
    return spans


def _semantic(
    text: str,
    counter: TokenCounter,
    size: int,
    overlap: int,
    threshold: float,
    embed: Callable[[list[str]], np.ndarray] | None,
) -> list[tuple[int, int]]:
    sentences = sentence_spans(text)
    if len(sentences) < 3:
        return _sentences(text, counter, size, overlap)
    if embed is None:
        from llmlab.search.embedding_cache import embed_cached as embed
    vectors = embed([text[a:b] for a, b in sentences])  # (S, dim), unit length
    similarity = np.sum(vectors[:-1] * vectors[1:], axis=1)  # (S-1,) cosine of neighbours
    cut = np.percentile(similarity, threshold)
    groups, first = [], 0
    for i, sim in enumerate(similarity):
        if sim < cut:  # a topic shift: end the group after sentence i
            groups.append((sentences[first][0], sentences[i][1]))
            first = i + 1
    groups.append((sentences[first][0], sentences[-1][1]))
    spans = []
    for a, b in groups:  # a group longer than size is packed sentence by sentence
        spans += (
            [(a, b)]
            if counter.count(a, b) <= size
            else _sentences(text, counter, size, overlap, a, b)
        )
    return spans


def _tokens(text: str, counter: TokenCounter, size: int, overlap: int) -> list[tuple[int, int]]:
    n, step, spans = len(counter), size - overlap, []
    for i in range(0, max(n - overlap, 1), step):
        j = min(i + size, n)
        a = counter.starts[i] if i > 0 else 0
        b = counter.starts[j] if j < n else len(text)  # up to the next token: no character lost
        spans.append((a, b))
    return spans


def chunk_text(
    text: str,
    strategy: str = "recursive",
    size: int = 200,
    overlap: int = 0,
    *,
    threshold: float = 10.0,
    embed: Callable[[list[str]], np.ndarray] | None = None,
) -> list[Chunk]:
    """Cut ``text`` into chunks of at most ``size`` embedder tokens.

    ``overlap`` (tokens) is repeated from the end of one chunk at the start of the next (not
    used by "headings" across sections or by "semantic" across breaks). ``threshold``: the
    "semantic" break percentile (10 = break at the 10% least similar neighbour pairs);
    ``embed`` maps a list of texts to unit vectors (default ``embed_cached``).
    ``chunk_text("One. Two.", "sentences", size=2)`` -> chunks ``"One."`` (0-4), ``"Two."`` (5-9).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown strategy {strategy!r}: use one of {', '.join(STRATEGIES)}.")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("chunk_text() needs a non-empty text; got an empty or blank one.")
    if size <= 0:
        raise ValueError(f"size must be a positive number of tokens, got {size}.")
    if not 0 <= overlap < size:
        raise ValueError(
            f"overlap must be at least 0 and smaller than size ({size}), got "
            f"{overlap}: each chunk must move forward. Try overlap={size // 5}."
        )
    if not 0 <= threshold <= 100:
        raise ValueError(f"threshold is a percentile between 0 and 100, got {threshold}.")
    counter = TokenCounter(text)
    if strategy == "tokens":
        spans = _tokens(text, counter, size, overlap)
    elif strategy == "recursive":
        spans = _recursive(text, 0, len(text), counter, size, overlap)
    elif strategy == "sentences":
        spans = _sentences(text, counter, size, overlap)
    elif strategy == "headings":
        spans = _sections(text, counter, size, overlap)
    else:
        spans = _semantic(text, counter, size, overlap, threshold, embed)
    return _chunks(text, spans)
