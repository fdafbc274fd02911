"""Chat with your docs: retrieve -> prompt -> generate (streamed) -> cite -> check, turn after turn.

Covers ``DocChat(index).ask(question)`` over a ``llmlab.search.docs_index.DocsIndex``:
1. rewrite: a follow-up ("and how do I undo that?") becomes a standalone query by adding the
   topic of the last standalone question (``rewrite_query``: a rule, not a model; a 135M model
   rewrites queries worse than this rule does, and the rule's limits are stated there). A
   follow-up is searched both as written (its new intent) and rewritten (its context), fused by RRF;
2. retrieve: hybrid BM25 + dense search, ``k`` chunks; if the nearest chunk's cosine similarity
   is below ``min_cosine`` (measured in chat-with-your-docs.ipynb on answerable vs off-topic
   questions) the answer is ``ABSTAIN`` and the model is not called;
3. prompt: ``llmlab.rag.answering.build_prompt`` checks the passages fit the window (and says what to cut);
   earlier turns go before it and are cut oldest first by ``llmlab.decoding.context_window.truncate_chat``;
4. generate through ``llmlab.chat.local`` (any backend), streamed piece by piece to ``on_token``;
5. cite + check: citations ``[n]`` to a passage that was not retrieved are removed and reported;
   every sentence is checked against the passage(s) it cites with ``support_score`` (share of
   its content words found in the passage); a sentence without a citation gets the passage that
   supports it best if that passes, else it is flagged.

The support check is a word-overlap proxy: it catches an answer about words the passage never
uses, but not negation ("is" vs "is not"), paraphrase (a faithful rewording can fail) or right
words combined wrongly. An entailment model would do better; none ships offline here.

The chat box that shows it in a notebook is ``llmlab.views.docchat_box.chat_box``.

Leaves out: re-ranking, answering from several folders at once, and saving conversations.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llmlab.decoding.chat_template import chat_text
from llmlab.decoding.context_window import truncate_chat
from llmlab.evaluation.metrics import STOPWORDS, support_score
from llmlab.rag.answering import build_prompt, extract_citations, format_passages
from llmlab.search.chunking import sentence_spans
from llmlab.search.docs_index import DocsIndex
from llmlab.search.docs_records import DocHit
from llmlab.search.retrievers import rrf

ABSTAIN = "I could not find this in your documents."
INSTRUCTION = (
    "Answer the question in one or two sentences using only the numbered passages. "
    "After each sentence, cite the passage it comes from as [n]."
)
MIN_COSINE = 0.35  # abstain below; FAQ questions vs off-topic ones, chat-with-your-docs.ipynb
STOP: list[str] = []  # none: a list after a blank line is part of the answer; max tokens end it
MIN_SUPPORT = 0.5  # a sentence is supported if half its content words are in the cited passage
FOLLOW_UP = re.compile(r"^\s*(and|but|or|so|also|then|what about|how about)\b", re.IGNORECASE)
REFERRING = frozenset("it its that this they them their those these there one ones".split())


@dataclass
class Citation:
    """Passage ``n`` of the prompt: its file (relative to the folder), lines and text."""

    n: int
    source: str
    start_line: int
    end_line: int
    text: str


@dataclass
class SentenceCheck:
    """One answer sentence: the passages it cites, its support (None: no content words)."""

    sentence: str
    cites: list[int]
    support: float | None
    supported: bool
    added: bool = False  # the checker added the citation (the model cited nothing)


@dataclass
class Answer:
    """One turn: what was asked and answered, what it rests on, and what the checks found."""

    question: str
    query: str  # the standalone query that was searched for
    answer: str  # after the checks (bad citations removed, missing ones added)
    raw: str  # what the model wrote
    hits: list[DocHit]
    citations: list[Citation]
    abstained: bool
    confidence: float  # cosine of the nearest chunk: what abstention looks at
    removed_citations: list[int] = field(default_factory=list)
    sentences: list[SentenceCheck] = field(default_factory=list)
    prompt: str = ""  # exactly the text the model read (chat template applied)
    dropped: list[dict] = field(default_factory=list)  # earlier turns cut to fit the window
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def unsupported(self) -> list[str]:
        return [s.sentence for s in self.sentences if not s.supported]

    def to_json(self) -> dict:
        """The ``--json`` object: answer, citations, hits, abstained, timings (and the checks)."""
        return {
            "answer": self.answer,
            "citations": [vars(c) for c in self.citations],
            "hits": [
                {
                    "source": h.chunk.source,
                    "start_line": h.chunk.start_line,
                    "end_line": h.chunk.end_line,
                    "score": round(h.score, 6),
                    "cosine": None if h.cosine is None else round(h.cosine, 4),
                }
                for h in self.hits
            ],
            "abstained": self.abstained,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "query": self.query,
            "removed_citations": self.removed_citations,
            "unsupported": self.unsupported,
        }


def content_words(text: str) -> list[str]:
    """Lower-cased words that are not stopwords: ``content_words("How do I undo it?") -> ['how', 'undo', 'it']``."""
    return [w for w in re.findall(r"[a-z0-9_]+", text.lower()) if w not in STOPWORDS]


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

    cleaned = re.sub(r"\[(\d+(?:\s*,\s*\d+)*)\]", keep, text)
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned).strip(), removed


def _support(sentence: str, passage: str) -> float | None:
    try:
        return support_score(re.sub(r"\[[\d,\s]+\]", "", sentence), passage)
    except ValueError:  # no content words: nothing to check
        return None


def check_support(
    text: str,
    passages: list[str],
    min_support: float = MIN_SUPPORT,
) -> tuple[str, list[SentenceCheck]]:
    """Check each sentence of ``text`` against the passages it cites; cite the best one where
    the model cited none and it passes. Returns the text (with added citations; spacing and line
    breaks kept) and the checks. A fragment of fewer than 2 content words ("1.", "Yes.") is not checked."""
    checks, out, done = [], [], 0
    for a, b in sentence_spans(text):
        seg = text[a:b]
        sentence = seg.strip()
        out.append(text[done:a] + seg[: len(seg) - len(seg.lstrip())])
        done = a + len(seg.rstrip())
        cites = extract_citations(sentence, len(passages))
        if len(content_words(re.sub(r"\[[\d,\s]+\]", "", sentence))) < 2:
            checks.append(SentenceCheck(sentence, cites, None, True))
        elif cites:
            support = max(_support(sentence, passages[n - 1]) or 0.0 for n in cites)
            checks.append(SentenceCheck(sentence, cites, support, support >= min_support))
        else:
            scores = [_support(sentence, p) or 0.0 for p in passages]
            best = max(range(len(passages)), key=lambda i: scores[i]) if passages else 0
            ok = bool(passages) and scores[best] >= min_support
            if ok:
                sentence = re.sub(r"([.!?:]?)$", rf" [{best + 1}]\1", sentence, count=1)
            checks.append(
                SentenceCheck(
                    sentence,
                    [best + 1] if ok else [],
                    scores[best] if passages else None,
                    ok or not passages,
                    ok,
                )
            )
        out.append(sentence)
    out.append(text[done:])
    return "".join(out).strip(), checks


class DocChat:
    """A conversation over one docs index; ``ask`` answers, checks, and remembers the turn."""

    def __init__(
        self,
        index: DocsIndex,
        chat: Any = None,
        *,
        lm: Any = None,
        k: int = 5,
        min_cosine: float = MIN_COSINE,
        max_new_tokens: int = 60,
        window: int | None = None,
    ) -> None:
        from llmlab.chat.local import LocalChat

        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(
                f"k (the number of passages to retrieve) must be a whole number >= 1, got {k!r}."
            )
        if chat is None:
            chat = LocalChat(lm)
        self.chat = chat
        self.lm = lm or getattr(
            chat, "lm", None
        )  # counts tokens; a remote model: the local one's count
        if self.lm is None:
            from llmlab.runtime.models import load_lm

            self.lm = load_lm()
        self.index, self.k, self.min_cosine, self.max_new_tokens = (
            index,
            k,
            min_cosine,
            max_new_tokens,
        )
        self.window = window or self.lm.context_length
        self.history: list[dict] = []  # past turns: user query, assistant answer
        self.topic: str | None = None

    def reset(self) -> None:
        """Forget the conversation."""
        self.history, self.topic = [], None

    def messages(
        self,
        query: str,
        hits: list[DocHit],
        history: list[dict] | None = None,
    ) -> tuple[list[dict], list[dict], list[str]]:
        """The chat the model reads, the earlier turns cut to fit the window, the passages."""
        history = self.history if history is None else history
        passages = [f"({h.chunk.source}) {h.chunk.text}" for h in hits]
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

    def retrieve(self, *queries: str) -> tuple[list[DocHit], float]:
        """The ``k`` hits and the confidence (best cosine of any chunk). Several queries (a
        follow-up as written and rewritten) are searched each and fused with RRF."""
        runs, best = self.index.retrieve_many(list(queries), self.k)  # one embedding call
        if len(runs) == 1:
            return runs[0], best[0]
        first = {h.id: h for run in reversed(runs) for h in run}  # chunk row -> its hit
        fused = rrf([[h.id for h in run] for run in runs])[: self.k]
        return [first[i] for i, _ in fused], max(best)

    def ask(
        self,
        question: str,
        *,
        on_token: Callable[[str], None] | None = None,
        on_prompt: Callable[[str], None] | None = None,
        remember: bool = True,
    ) -> Answer:
        """Answer ``question`` from the documents, checked and cited. ``on_prompt`` gets the exact
        prompt text before generation starts; ``on_token`` each piece of the answer as written."""
        _check_question(question)
        t0 = time.perf_counter()
        query = rewrite_query(question, self.topic)
        hits, confidence = self.retrieve(*dict.fromkeys([query, question.strip()]))
        timings = {"retrieve_s": time.perf_counter() - t0}
        if remember and (self.topic is None or not is_follow_up(question)):
            self.topic = question.strip()
        if confidence < self.min_cosine:
            if on_token:
                on_token(ABSTAIN)
            timings["total_s"] = time.perf_counter() - t0
            return Answer(question, query, ABSTAIN, "", hits, [], True, confidence, timings=timings)
        messages, dropped, passages = self.messages(query, hits)
        prompt = chat_text(self.lm, messages)
        if on_prompt:
            on_prompt(prompt)
        pieces, t1 = [], time.perf_counter()
        for piece in self.chat.stream(messages, max_tokens=self.max_new_tokens, stop=STOP):
            if not pieces:
                timings["first_token_s"] = time.perf_counter() - t0
            pieces.append(piece)
            if on_token:
                on_token(piece)
        timings["generate_s"] = time.perf_counter() - t1
        answer = checked(
            Answer(
                question,
                query,
                "",
                "".join(pieces).strip(),
                hits,
                [],
                False,
                confidence,
                prompt=prompt,
                dropped=dropped,
            ),
            passages,
        )
        timings["total_s"] = time.perf_counter() - t0
        answer.timings = timings
        if remember:
            self.history += [
                {"role": "user", "content": query},
                {"role": "assistant", "content": answer.answer},
            ]
        return answer

    def ask_many(self, questions: list[str]) -> list[Answer]:
        """Answer independent questions (no conversation) in one batch: for evaluation."""
        for q in questions:
            _check_question(q)
        runs, best = self.index.retrieve_many(list(questions), self.k)  # one embedding call
        answers: list[Answer | None] = [None] * len(questions)
        todo = []
        for i, (q, hits, confidence) in enumerate(zip(questions, runs, best, strict=True)):
            answers[i] = Answer(q, q, ABSTAIN, "", hits, [], True, confidence)
            if confidence >= self.min_cosine:
                todo.append((i, *self.messages(q, hits, history=[])))
        if todo:
            results = self.chat.complete_batch(
                [m for _, m, _, _ in todo], max_tokens=self.max_new_tokens, stop=STOP
            )
            for (i, msgs, _, passages), res in zip(todo, results, strict=True):
                a = answers[i]
                a.raw, a.abstained, a.prompt = res.text.strip(), False, chat_text(self.lm, msgs)
                checked(a, passages)
        return answers  # type: ignore[return-value]


def _check_question(question: str) -> None:
    if not isinstance(question, str) or not question.strip():
        raise ValueError("The question is empty: type a question about your documents.")


def checked(answer: Answer, passages: list[str]) -> Answer:
    """Fill ``answer``'s checks from its ``raw`` text: bad citations out, support, citations."""
    text, answer.removed_citations = check_citations(answer.raw, len(answer.hits))
    answer.answer, answer.sentences = check_support(text, passages)
    hits = answer.hits
    answer.citations = [
        Citation(
            n,
            hits[n - 1].chunk.source,
            hits[n - 1].chunk.start_line,
            hits[n - 1].chunk.end_line,
            hits[n - 1].chunk.text,
        )
        for n in sorted({n for s in answer.sentences for n in s.cites})
    ]
    return answer
