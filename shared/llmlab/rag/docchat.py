"""Chat with your docs: answers you can trust from a 135M model, because code does what it cannot.

A 135M model copies well and reasons badly. So ``DocChat(index).ask(question)`` lets it do
only what it does well, and code does the rest:

1. rewrite: a follow-up ("and how do I undo that?") is searched with the last standalone
   question added (``rewrite_query``: a rule, not a model) and fused by RRF with the follow-up
   as written; what was already answered in this conversation is not offered again;
2. retrieve: hybrid BM25 + dense search, ``k`` passages (``llmlab.search.docs_index``);
3. find the answer: every answer unit of the retrieved sections (a paragraph with its code
   block, a list item, a sentence) is scored by the embedder and the question's rare words
   (``llmlab.rag.extractive``); the best score is the *confidence*;
4. abstain below ``MIN_SCORE``: the threshold was read off the selective-answering curve
   (coverage vs accuracy) of the tune set (``phase-4-rag/notes.md``); the model is not called;
5. answer, in one of three ``MODES``:
   - ``"extract"`` (the default): the best unit, quoted exactly; its lines are the citation.
     No model runs at all: faithful by construction;
   - ``"quote"``: the model chooses which of the top units to copy, and can only copy
     (``llmlab.rag.quoting``: quote-constrained decoding); also faithful by construction;
   - ``"generate"``: the model writes an answer from the numbered passages (streamed), then
     ``llmlab.rag.answer_checks`` removes every sentence no passage supports and points each
     citation at the lines that support it. Labelled "generated" everywhere it is shown.
   Which is the default, and why, is measured in ``benchmarks/bench_answers.py``.

``Answer`` holds what was asked and answered, the hits, the citations (each a
``llmlab.data.documents.Passage``: file and exact lines), the checks and the timings.
The chat box that shows it in a notebook is ``llmlab.views.docchat_box.chat_box``.

Leaves out: re-ranking with a cross-encoder (none ships offline), answering from several
folders at once, and saving conversations.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llmlab.data.documents import Document, Passage
from llmlab.data.readers import read_document
from llmlab.decoding.chat_template import chat_text
from llmlab.decoding.context_window import truncate_chat
from llmlab.rag.answer_checks import (
    SentenceCheck,
    check_answer,
    check_citations,
    content_words,
    cut_at_boundary,
)
from llmlab.rag.answering import build_prompt, format_passages
from llmlab.rag.extractive import Extract, Extractor, corpus_idf
from llmlab.search.docs_index import DocsIndex
from llmlab.search.retrievers import rrf
from llmlab.search.semantic_index import Hit

MODES = ("extract", "quote", "generate")
DEFAULT_MODE = "extract"  # best right-with-right-file on the tune set, no model: bench_answers.py
MIN_SCORE = (
    0.65  # abstain below; the tune set's curve: 99% of off-topic refused, all answerable kept
)
QUOTE_OPTIONS = 4  # "quote" mode: the model picks among the top 4 units
ABSTAIN = "I could not find this in your documents."
NOT_SUPPORTED = "The model's answer is not supported by your documents, so it is not shown."
INSTRUCTION = (
    "Answer the question in one or two sentences using only the numbered passages. "
    "After each sentence, cite the passage it comes from as [n]."
)
STOP: list[str] = []  # none: a list after a blank line is part of the answer; max tokens end it
FOLLOW_UP = re.compile(r"^\s*(and|but|or|so|also|then|what about|how about)\b", re.IGNORECASE)
REFERRING = frozenset("it its that this they them their those these there one ones".split())


@dataclass
class Citation:
    """``[n]`` in an answer: the lines it points at (file, offsets, lines, text)."""

    n: int
    passage: Passage


@dataclass
class Answer:
    """One turn: what was asked and answered, what it rests on, and what the checks found."""

    question: str
    query: str  # the standalone query that was searched for
    answer: str  # what is shown: quoted lines, or the checked generated sentences
    raw: str  # what the model wrote ("" when no model ran)
    hits: list[Hit]
    citations: list[Citation]
    abstained: bool
    confidence: float  # the best answer unit's score: what abstention looks at
    mode: str = DEFAULT_MODE
    removed_citations: list[int] = field(default_factory=list)
    sentences: list[SentenceCheck] = field(default_factory=list)
    prompt: str = ""  # exactly the text the model read (chat template applied)
    dropped: list[dict] = field(default_factory=list)  # earlier turns cut to fit the window
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def abstention(
        cls, *, question: str, query: str, hits: list[Hit], confidence: float, mode: str
    ) -> Answer:
        """The turn before anything is found: ABSTAIN shown, no citation (filled in if the
        confidence clears the threshold)."""
        return cls(
            question=question,
            query=query,
            answer=ABSTAIN,
            raw="",
            hits=hits,
            citations=[],
            abstained=True,
            confidence=confidence,
            mode=mode,
        )

    @property
    def unsupported(self) -> list[str]:
        """Sentences the model wrote that no retrieved passage supports (left out of ``answer``)."""
        return [s.sentence for s in self.sentences if not s.supported]

    @property
    def generated(self) -> bool:
        """True if a model wrote the words of ``answer`` (mode "generate"), not copied them."""
        return self.mode == "generate" and not self.abstained

    def to_json(self) -> dict:
        """The ``--json`` object: answer, mode, citations, hits, abstained, confidence, timings."""
        return {
            "answer": self.answer,
            "mode": self.mode,
            "citations": [{"n": c.n, **asdict(c.passage)} for c in self.citations],
            "hits": [
                {
                    "source": h.passage.source,
                    "first_line": h.passage.first_line,
                    "last_line": h.passage.last_line,
                    "score": round(h.score, 6),
                    "cosine": None if h.cosine is None else round(h.cosine, 4),
                }
                for h in self.hits
            ],
            "abstained": self.abstained,
            "confidence": round(self.confidence, 4),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "query": self.query,
            "removed_citations": self.removed_citations,
            "unsupported": self.unsupported,
        }


def is_follow_up(question: str) -> bool:
    """A question that leans on the conversation: starts with "and"/"what about", refers back
    ("it", "that", ...) or has two content words or fewer."""
    words = content_words(question)
    return bool(
        FOLLOW_UP.match(question)
        or REFERRING & set(words)
        or len([w for w in words if w not in REFERRING]) <= 2
    )


def rewrite_query(question: str, topic: str | None) -> str:
    """The query to search for: ``question`` itself, or a follow-up with the last ``topic`` added.

    ``rewrite_query("and how do I undo that?", "How do I install a package?")`` ->
    ``"and how do I undo that? (How do I install a package?)"``. Limits: a new question that
    happens to say "it" gets the old topic too; a follow-up with no such cue does not.
    """
    if not topic or not is_follow_up(question):
        return question.strip()
    return f"{question.strip()} ({topic.strip()})"


def check_mode(mode: str) -> str:
    """``mode`` if it is one of ``MODES``, else a ValueError that lists them."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}.")
    return mode


class DocChat:
    """A conversation over one docs index; ``ask`` answers (or abstains), cites and remembers.

    ``mode`` (see the module docstring) and ``min_score`` (abstain below it) are the two knobs.
    The language model is loaded only by a mode that uses it (``lm``/``chat`` to pass your own).
    """

    def __init__(
        self,
        index: DocsIndex,
        chat: Any = None,
        *,
        lm: Any = None,
        k: int = 5,
        mode: str = DEFAULT_MODE,
        min_score: float = MIN_SCORE,
        max_new_tokens: int = 60,
        window: int | None = None,
    ) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(
                f"k (the number of passages to retrieve) must be a whole number >= 1, got {k!r}."
            )
        self.index, self.k, self.mode = index, k, check_mode(mode)
        self.min_score, self.max_new_tokens = min_score, max_new_tokens
        self._chat, self._lm, self._window = chat, lm, window
        self._documents: dict[str, tuple[float, Document]] = {}
        self._vectors: dict[str, np.ndarray] = {}
        self._extractor: Extractor | None = None
        self.history: list[dict] = []  # past turns for the model: user query, assistant answer
        self.shown: set[tuple[str, int, int]] = set()  # (source, start, end) already answered
        self.topic: str | None = None

    # --- what is loaded only when needed ----------------------------------------------------

    @property
    def lm(self) -> Any:
        """The local model (counts tokens; quotes; generates). Loaded on first use."""
        if self._lm is None:
            self._lm = getattr(self._chat, "lm", None)
        if self._lm is None:
            from llmlab.runtime.models import load_lm

            self._lm = load_lm()
        return self._lm

    @property
    def chat(self) -> Any:
        """The chat backend that generates (``mode="generate"``). Loaded on first use."""
        if self._chat is None:
            from llmlab.chat.local import LocalChat

            self._chat = LocalChat(self.lm)
        return self._chat

    @property
    def window(self) -> int:
        return self._window or self.lm.context_length

    @window.setter
    def window(self, value: int) -> None:
        self._window = value

    @property
    def extractor(self) -> Extractor:
        if self._extractor is None:
            idf = corpus_idf([p.text for p in self.index.passages])
            self._extractor = Extractor(self.document, self._embed, idf)
        return self._extractor

    def document(self, source: str) -> Document:
        """The file ``source`` of the folder, read once (again if it changed on disk)."""
        path = Path(self.index.folder) / source
        mtime = path.stat().st_mtime_ns
        cached = self._documents.get(source)
        if cached is None or cached[0] != mtime:
            cached = (mtime, read_document(path, self.index.folder))
            self._documents[source] = cached
        return cached[1]

    def _embed(self, texts: list[str]) -> np.ndarray:
        from llmlab.search.embeddings import embed

        todo = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if todo:
            vectors = embed(todo, model=self.index.embedder, show_progress=False)  # (m, dim)
            self._vectors.update(zip(todo, vectors, strict=True))
        return np.stack([self._vectors[t] for t in texts])  # (n, dim)

    def reset(self) -> None:
        """Forget the conversation."""
        self.history, self.topic, self.shown = [], None, set()

    # --- the pipeline -----------------------------------------------------------------------

    def retrieve(self, *queries: str) -> tuple[list[Hit], float]:
        """The ``k`` hits and the best cosine of any passage. Several queries (a follow-up as
        written and rewritten) are searched each and fused with RRF."""
        runs, best = self.index.retrieve_many(list(queries), self.k)  # one embedding call
        if len(runs) == 1:
            return runs[0], best[0]
        first = {h.id: h for run in reversed(runs) for h in run}  # passage row -> its hit
        fused = rrf([[h.id for h in run] for run in runs])[: self.k]
        return [first[i] for i, _ in fused], max(best)

    def messages(
        self,
        query: str,
        hits: list[Hit],
        history: list[dict] | None = None,
    ) -> tuple[list[dict], list[dict], list[str]]:
        """The chat the model reads (mode "generate"), the earlier turns cut to fit the window,
        and the passages."""
        history = self.history if history is None else history
        passages = [f"({h.passage.source}) {h.text}" for h in hits]
        build_prompt(
            query,
            passages,
            lm=self.lm,
            instruction=INSTRUCTION,
            prime="",
            budget=self.window - self.max_new_tokens,
            max_new_tokens=self.max_new_tokens,
        )
        user = f"Passages:\n{format_passages(passages)}\n\nQuestion: {query}"  # as build_prompt
        full = [
            {"role": "system", "content": INSTRUCTION},
            *history,
            {"role": "user", "content": user},
        ]
        kept = truncate_chat(self.lm, full, max_tokens=self.window, reserve=self.max_new_tokens)
        return kept, history[: len(full) - len(kept)], passages

    def find(self, query: str, hits: list[Hit], follow_up: str = "") -> Extract | None:
        """The best answer unit of ``hits`` for ``query``. A follow-up (``follow_up``: the
        question as written) skips what was already shown, and each unit keeps the better of
        its scores for the rewritten query and for the follow-up as written."""
        exclude = self.shown if follow_up else ()
        ranked = self.extractor.rank(query, hits, exclude)
        if follow_up and ranked:
            other = {
                (s.doc.path, s.unit.start): s for s in self.extractor.rank(follow_up, hits, exclude)
            }
            best = [
                max(s, other.get((s.doc.path, s.unit.start), s), key=lambda x: x.score)
                for s in ranked
            ]
            ranked = sorted(best, key=lambda x: -x.score)
        return self.extractor.extract(ranked) if ranked else None

    def ask(
        self,
        question: str,
        *,
        on_token: Callable[[str], None] | None = None,
        on_prompt: Callable[[str], None] | None = None,
        remember: bool = True,
    ) -> Answer:
        """Answer ``question`` from the documents, or abstain. ``on_prompt`` gets the exact prompt
        text before a model runs; ``on_token`` each piece of the answer as it is written (a
        quoted answer arrives in one piece)."""
        check_question(question)
        t0 = time.perf_counter()
        follow_up = self.topic is not None and is_follow_up(question)
        query = rewrite_query(question, self.topic)
        hits, _ = self.retrieve(*dict.fromkeys([query, question.strip()]))
        found = self.find(query, hits, question.strip() if follow_up else "")
        confidence = found.score if found else 0.0
        timings = {"retrieve_s": time.perf_counter() - t0}
        if remember and not follow_up:
            self.topic = question.strip()
        answer = Answer.abstention(
            question=question, query=query, hits=hits, confidence=confidence, mode=self.mode
        )
        if found is None or confidence < self.min_score:
            emit(on_token, ABSTAIN)
        elif self.mode == "generate":
            self._generate(answer, on_token, on_prompt, timings, t0)
        else:
            picked = self._pick(query, found, on_prompt)
            answer.answer, answer.abstained = picked.text, False
            answer.citations = [Citation(n=1, passage=picked)]
            timings["first_token_s"] = time.perf_counter() - t0
            emit(on_token, picked.text)
        timings["total_s"] = time.perf_counter() - t0
        answer.timings = timings
        if remember and not answer.abstained:
            self.shown |= {
                (c.passage.source, c.passage.start, c.passage.end) for c in answer.citations
            }
            if found is not None:
                u = found.best.unit
                self.shown.add((found.best.doc.path, u.start, u.end))
            self.history += [
                {"role": "user", "content": query},
                {"role": "assistant", "content": answer.answer},
            ]
        return answer

    def _pick(
        self, question: str, found: Extract, on_prompt: Callable[[str], None] | None
    ) -> Passage:
        """The lines to quote: the best unit ("extract"), or the one the model copies ("quote")."""
        if self.mode == "extract":
            return found.passage
        from llmlab.rag.quoting import quote, quote_prompt

        options = found.ranked[:QUOTE_OPTIONS]
        texts = [o.text for o in options]
        if on_prompt and len(texts) > 1:
            on_prompt(self.lm.tokenizer.decode(quote_prompt(self.lm, question, texts)))
        choice = quote(self.lm, question, texts)
        return self.extractor.extract(found.ranked, choice.index).passage

    def _generate(
        self,
        answer: Answer,
        on_token: Callable[[str], None] | None,
        on_prompt: Callable[[str], None] | None,
        timings: dict[str, float],
        t0: float,
    ) -> None:
        messages, answer.dropped, _ = self.messages(answer.query, answer.hits)
        answer.prompt = chat_text(self.lm, messages)
        if on_prompt:
            on_prompt(answer.prompt)
        pieces, t1 = [], time.perf_counter()
        for piece in self.chat.stream(messages, max_tokens=self.max_new_tokens, stop=STOP):
            if not pieces:
                timings["first_token_s"] = time.perf_counter() - t0
            pieces.append(piece)
            emit(on_token, piece)
        timings["generate_s"] = time.perf_counter() - t1
        answer.raw = "".join(pieces).strip()
        self.checked(answer)

    def checked(self, answer: Answer) -> Answer:
        """Fill ``answer`` from its ``raw`` generated text: cut at a boundary, bad citations out,
        every sentence checked; nothing supported -> not shown (``NOT_SUPPORTED``)."""
        text = cut_at_boundary(answer.raw)
        text, answer.removed_citations = check_citations(text, len(answer.hits))
        checked, answer.sentences, lines = check_answer(text, answer.hits, self.document)
        answer.citations = [Citation(n=i, passage=p) for i, p in enumerate(lines, start=1)]
        supported = bool(answer.citations) and any(
            s.supported and s.support is not None for s in answer.sentences
        )
        answer.answer = checked if supported else NOT_SUPPORTED
        answer.citations = answer.citations if supported else []
        answer.abstained = not supported
        return answer

    def ask_many(self, questions: list[str]) -> list[Answer]:
        """Answer independent questions (no conversation): generated ones in one batch."""
        for q in questions:
            check_question(q)
        runs, _ = self.index.retrieve_many(list(questions), self.k)  # one embedding call
        answers, todo = [], []
        for q, hits in zip(questions, runs, strict=True):
            found = self.find(q, hits)
            score = found.score if found else 0.0
            a = Answer.abstention(question=q, query=q, hits=hits, confidence=score, mode=self.mode)
            answers.append(a)
            if found is None or score < self.min_score:
                continue
            if self.mode == "generate":
                todo.append((a, self.messages(q, hits, history=[])[0]))
            else:
                picked = self._pick(q, found, None)
                a.answer, a.abstained = picked.text, False
                a.citations = [Citation(n=1, passage=picked)]
        if todo:
            results = self.chat.complete_batch(
                [m for _, m in todo], max_tokens=self.max_new_tokens, stop=STOP
            )
            for (a, msgs), res in zip(todo, results, strict=True):
                a.raw, a.prompt = res.text.strip(), chat_text(self.lm, msgs)
                self.checked(a)
        return answers


def emit(on_token: Callable[[str], None] | None, text: str) -> None:
    if on_token:
        on_token(text)


def check_question(question: str) -> None:
    """A clear ValueError for an empty question."""
    if not isinstance(question, str) or not question.strip():
        raise ValueError("The question is empty: type a question about your documents.")
