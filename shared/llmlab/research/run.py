"""The research agent's run state and result: budgets, the cited answer, and the verify step.

Covers:
- ``Run``: one question's run -- its corpus and defences, the steps taken, tokens and seconds
  spent (a ``llmlab.agents.loop.RunRecord``, as the agent loop keeps), what was searched and
  read, the model's raw and short answer, the source it cites;
  ``Run.check()`` raises ``Stop`` before a step that would go over the ``llmlab.agents.loop.Budget``.
- ``ResearchResult``: what ``llmlab.research.agent.research`` returns (``to_json()`` is the
  ``llmlab research --json`` object), and ``finish(run, mode)`` that builds it: the answer as
  sentences that each cite ``[source]`` (``llmlab.research.steps.compose``, or a partial answer
  when a budget stopped the run; in the facts mode, the conclusion computed by code and each
  fact cited with its lines, from ``run.finding``), the defences' post-check, and every
  citation checked.
- ``CheckedCitation`` / ``checked_citations(answer, sources)``: each citation checked
  (``llmlab.rag.citations.verify_citations``) and located: the lines of its source that
  support the sentence (a ``llmlab.data.documents.Passage``: file, first and last line, text).
- ``revise(result)``: the verify mode's step, with no model call -- each sentence whose citation
  is not verified is re-cited to a document read that supports it, or dropped.
- ``source_text(corpus, source, defences)``: a document as the model saw it.
- ``score(result, answers, gold_sources)``: one run measured (a citation with lines counts as
  its file).

Leaves out: the modes themselves (searching, reading, the model calls, batching across
questions: ``llmlab.research.agent``) and the text logic of notes, claims and scores
(``llmlab.research.steps``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from llmlab.agents.run_record import AgentStep, Budget, RunRecord
from llmlab.data.documents import Document, Passage
from llmlab.rag.citations import citation_scores, verify_citations
from llmlab.research.corpus import Corpus
from llmlab.research.injection import Defences, strip_instructions
from llmlab.research.steps import compose, is_correct, partial_answer, summary


@dataclass(frozen=True)
class CheckedCitation:
    """One citation of the answer, checked: the answer ``sentence``, the ``source`` it cites,
    the ``passage`` of that source that supports it best (file, lines, text; None if the source
    does not exist or no line of it was found) and whether the check ``verified`` it."""

    sentence: str
    source: str
    passage: Passage | None
    verified: bool

    @property
    def where(self) -> str:
        """``Jaws_film.txt:3``: the file and lines cited (the file alone if no line was found)."""
        return self.passage.where if self.passage else self.source

    @property
    def text(self) -> str:
        """The lines cited, as they are in the file ("" if none)."""
        return self.passage.text if self.passage else ""

    def to_json(self) -> dict:
        """``{source, first_line, last_line, text, verified}`` (lines None if unknown)."""
        p = self.passage
        return {
            "source": self.source,
            "first_line": p.first_line if p else None,
            "last_line": p.last_line if p else None,
            "text": self.text,
            "verified": bool(self.verified),
        }


def checked_citations(answer: str, sources: dict[str, str]) -> list[CheckedCitation]:
    """``llmlab.rag.citations.verify_citations`` with line numbers: each check's supporting
    sentence located in its source (the text as read, which keeps the file's line breaks)."""
    out = []
    for c in verify_citations(answer, sources):
        passage = None
        text = sources.get(c.source, "")
        at = text.find(c.text) if c.text else -1
        if at >= 0:
            passage = Document(path=c.source, text=text).passage(at, at + len(c.text))
        out.append(
            CheckedCitation(
                sentence=c.sentence, source=c.source, passage=passage, verified=c.verified
            )
        )
    return out


@dataclass
class ResearchResult:
    """One research run: the answer (every sentence cites ``[source]``), its checked citations,
    the trace, and what it cost."""

    question: str
    mode: str
    answer: str
    short_answer: str  # the model's extracted answer: what correctness is scored on
    citations: list[CheckedCitation]  # each citation: its sentence, the lines cited, verified
    steps: list[AgentStep]
    tokens: int
    seconds: float
    stop_reason: str  # "answer" | "max_steps" | "max_tokens" | "max_seconds" | "loop" | "error"
    sources: dict[str, str] = field(default_factory=dict)  # documents read: source -> text
    dropped: list[str] = field(default_factory=list)  # sentences removed by verification
    parts: list[str] = field(default_factory=list)  # the answer's sentences, each with its citation
    seen: list[str] = field(default_factory=list)  # sources the model was shown (hits and reads)
    conclusion: str = ""  # facts mode: the answer computed by code from the cited facts
    why: str = ""  # facts mode: why there is no answer (a missing document, fact, a tie)
    facts: list[Any] = field(default_factory=list)  # facts mode: each lookup's Fact

    def to_json(self) -> dict:
        """The ``--json`` object: answer, short_answer, mode, citations (each with its lines),
        steps, tokens, seconds, stop_reason."""
        return {
            "answer": self.answer,
            "short_answer": self.short_answer,
            "mode": self.mode,
            "citations": [c.to_json() for c in self.citations],
            "steps": [
                {
                    "tool": s.tool or s.kind,
                    "arguments": s.arguments or {},
                    "result": summary(s.result),
                }
                for s in self.steps
            ],
            "tokens": int(self.tokens),
            "seconds": round(float(self.seconds), 3),
            "stop_reason": self.stop_reason,
        }


LINES = re.compile(r"\[([^\[\]]+?):\d+(?:-\d+)?\]")  # a citation with lines: [Jaws_film.txt:3]


class Stop(Exception):
    """A budget ran out: ``reason`` is the stop reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Run:
    """The state of one question's run: ``Run("Who ...?", corpus, Budget(), Defences.all())``.

    Its steps, what they cost, its budget and its stop reason are a ``RunRecord``
    (``run.record``, the same record the agent loop keeps): every step counts against
    ``Budget.max_steps``, and the agent mode hands the record to ``run_agent`` to go on with.
    """

    def __init__(self, question: str, corpus: Corpus, budget: Budget, defences: Defences) -> None:
        self.question, self.corpus, self.defences = question, corpus, defences
        self.record = RunRecord(budget=budget)
        self.queries: list[str] = []
        self.hits: list[Any] = []  # Hit (llmlab.search.semantic_index), best first, one per source
        self.by_query: dict[str, list[Any]] = {}  # query -> its hits
        self.sources: dict[str, str] = {}
        self.raw, self.short, self.cited = "", "", ""
        self.finding: Any = None  # the facts mode's llmlab.research.reasoning.Finding

    @property
    def budget(self) -> Budget:
        return self.record.budget

    @property
    def steps(self) -> list[AgentStep]:
        return self.record.steps

    @property
    def tokens(self) -> int:
        return self.record.tokens

    @property
    def stop_reason(self) -> str:
        """ "answer" while the run goes on or after it answered; else the budget (or loop) that
        stopped it."""
        return self.record.stop_reason or "answer"

    def seconds(self) -> float:
        """Seconds spent on this question (its share of each batched call, when batched)."""
        return self.record.seconds

    def check(self) -> None:
        """Raise ``Stop`` if the next step would go over a budget."""
        reason = self.stop_reason if self.stop_reason != "answer" else self.record.over_budget()
        if reason:
            self.record.stop_reason = reason
            raise Stop(reason)

    def live(self) -> bool:
        """True if the run may take another step (``check`` passes)."""
        try:
            self.check()
            return True
        except Stop:
            return False

    def add(
        self,
        kind: str,
        tool: str | None,
        arguments: dict | None,
        result: str,
        *,
        ok: bool = True,
        tokens: int = 0,
        seconds: float = 0.0,
        raw: str = "",
    ) -> None:
        """Record one step and what it cost (each step counts as one against ``max_steps``)."""
        index = len(self.steps)
        self.record.calls += 1
        self.record.add(
            kind,
            result,
            index=index,
            tool=tool,
            arguments=arguments,
            ok=ok,
            tokens=tokens,
            seconds=seconds,
            raw=raw,
        )

    def text(self, source: str) -> str:
        """``source_text`` of this run's corpus, with this run's defences."""
        return source_text(self.corpus, source, self.defences)


def source_text(corpus: Corpus, source: str, defences: Defences) -> str:
    """A document as the model saw it (instruction-like sentences stripped if that defence is on)."""
    text = corpus.read(source)
    return strip_instructions(text) if defences.strip else text


def finish(run: Run, mode: str) -> ResearchResult:
    """The result of a finished (or stopped) run: the cited answer, post-checked and verified;
    ``mode="verify"`` also revises it; a run the facts mode concluded keeps its own facts."""
    if run.finding is not None:
        return _finish_facts(run)
    if run.stop_reason != "answer" and not run.short:
        parts = _partial(run)
    else:
        parts = compose(
            run.question, run.short, run.cited, run.sources, [h.passage.source for h in run.hits]
        )
    parts = [p for p in parts if run.defences.check(p)]  # the post-check drops a part, or keeps it
    parts = parts or ["The answer was withheld by the post-check."]
    checks = [c for p in parts for c in checked_citations(p, run.sources)]
    seen = list(dict.fromkeys([h.passage.source for h in run.hits] + list(run.sources)))
    res = ResearchResult(
        question=run.question,
        mode="plan" if mode == "verify" else mode,
        answer=" ".join(parts),
        short_answer=run.short,
        citations=checks,
        steps=run.steps,
        tokens=run.tokens,
        seconds=run.seconds(),
        stop_reason=run.stop_reason,
        sources=dict(run.sources),
        parts=parts,
        seen=seen,
    )
    return revise(res) if mode == "verify" else res


def _finish_facts(run: Run) -> ResearchResult:
    """The facts mode's result: the conclusion (computed by code, citing the facts it rests on)
    and each fact with the lines it was copied from, checked against exactly those lines. With
    no answer, why not, and the facts that were found. The post-check can still drop a part;
    if it drops one the answer rests on, the answer is withheld."""
    f = run.finding
    facts = [c for c in f.checks if c.fact.value]
    parts = f.parts
    kept = [p for p in parts if run.defences.check(p)]
    short = f.short if kept == parts else ""
    citations = [
        CheckedCitation(
            sentence=c.cited, source=c.fact.source, passage=c.fact.passage, verified=c.verified
        )
        for c in facts
        if c.cited in kept
    ]
    seen = list(dict.fromkeys([h.passage.source for h in run.hits] + list(run.sources)))
    return ResearchResult(
        question=run.question,
        mode="facts",
        answer=" ".join(kept) or "The answer was withheld by the post-check.",
        short_answer=short,
        citations=citations,
        steps=run.steps,
        tokens=run.tokens,
        seconds=run.seconds(),
        stop_reason=run.stop_reason,
        sources=dict(run.sources),
        dropped=[p for p in parts if p not in kept],
        parts=kept,
        seen=seen,
        conclusion=f.conclusion if short else "",
        facts=[c.fact for c in f.checks],
        why=f.why
        if not f.short
        else ("" if short else "the post-check dropped a fact it rests on"),
    )


def _partial(run: Run) -> list[str]:
    """What a stopped run can still say (``partial_answer``); with no document read, the best
    search hit's snippet stands in for one (and is what its citation is checked against)."""
    if not run.sources and run.hits:
        h = run.hits[0]
        run.sources[h.passage.source] = h.text
    return partial_answer(run.question, run.stop_reason, run.sources)


def revise(result: ResearchResult) -> ResearchResult:
    """The verify step: each answer sentence whose citation the check does not verify is
    re-cited to a document read that supports it, or dropped. No model call: a result of
    ``mode="plan"`` revised is exactly what ``mode="verify"`` returns."""
    kept, checks, dropped = [], [], []
    for part in result.parts:
        found = checked_citations(part, result.sources)
        if all(c.verified for c in found):
            kept.append(part)
            checks += found
            continue
        bare = re.sub(r"\s*\[[^\[\]]*\]", "", part).strip().rstrip(".")
        for src, text in result.sources.items():
            again = checked_citations(f"{bare} [{src}].", {src: text})
            if again and all(c.verified for c in again):
                kept.append(f"{bare} [{src}].")
                checks += again
                break
        else:
            dropped.append(part)
    kept = kept or ["No claim survived the citation check."]
    answered = bool(result.short_answer) and result.parts[:1] != dropped[:1]  # the claim survived
    return replace(
        result,
        mode="verify",
        answer=" ".join(kept),
        parts=kept,
        citations=checks,
        dropped=result.dropped + dropped,
        short_answer=result.short_answer if answered else "",
    )


def score(result: ResearchResult, answers: Sequence[str], gold_sources: Sequence[str]) -> dict:
    """One run measured: ``correct`` (``is_correct``), ``wrong`` (an answer was given and it is
    not correct; a dropped or missing answer is neither), ``gold_seen`` (share of the gold documents
    the run saw), ALCE ``citation_recall`` / ``citation_precision`` (``llmlab.rag.citations`` proxy,
    against the documents read), ``steps``, ``tokens``, ``seconds``."""
    cs = citation_scores(LINES.sub(r"[\1]", result.answer), result.sources)  # [a.txt:3] -> [a.txt]
    correct = is_correct(result.short_answer, answers)
    return {
        "correct": float(correct),
        "wrong": float(bool(result.short_answer) and not correct),
        "gold_seen": sum(g in result.seen for g in gold_sources) / max(len(gold_sources), 1),
        "citation_recall": cs.recall,
        "citation_precision": cs.precision,
        "steps": len(result.steps),
        "tokens": result.tokens,
        "seconds": result.seconds,
    }
