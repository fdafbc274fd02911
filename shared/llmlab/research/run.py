"""The research agent's run state and result: budgets, the cited answer, and the verify step.

Covers:
- ``Run``: one question's run -- its corpus and defences, the steps taken, tokens and seconds
  spent (a ``llmlab.agents.loop.RunRecord``, as the agent loop keeps), what was searched and
  read, the model's raw and short answer, the source it cites;
  ``Run.check()`` raises ``Stop`` before a step that would go over the ``llmlab.agents.loop.Budget``.
- ``ResearchResult``: what ``llmlab.research.agent.research`` returns (``to_json()`` is the
  ``llmlab research --json`` object), and ``finish(run, mode)`` that builds it: the answer as
  sentences that each cite ``[source]`` (``llmlab.research.steps.compose``, or a partial answer
  when a budget stopped the run), the defences' post-check, and every citation checked
  (``llmlab.rag.citations.verify_citations``).
- ``revise(result)``: the verify mode's step, with no model call -- each sentence whose citation
  is not verified is re-cited to a document read that supports it, or dropped.
- ``source_text(corpus, source, defences)``: a document as the model saw it.

Leaves out: the modes themselves (searching, reading, the model calls, batching across
questions: ``llmlab.research.agent``) and the text logic of notes, claims and scores
(``llmlab.research.steps``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from llmlab.agents.loop import AgentStep, Budget, RunRecord
from llmlab.rag.citations import citation_scores, verify_citations
from llmlab.research.corpus import Corpus
from llmlab.research.injection import Defences, strip_instructions
from llmlab.research.steps import compose, is_correct, partial_answer, summary


@dataclass
class ResearchResult:
    """One research run: the answer (every sentence cites ``[source]``), its checked citations,
    the trace, and what it cost."""

    question: str
    mode: str
    answer: str
    short_answer: str  # the model's extracted answer: what correctness is scored on
    citations: list[Any]  # llmlab.rag.citations.CitationCheck(sentence, source, text, verified)
    steps: list[AgentStep]
    tokens: int
    seconds: float
    stop_reason: str  # "answer" | "max_steps" | "max_tokens" | "max_seconds" | "loop" | "error"
    sources: dict[str, str] = field(default_factory=dict)  # documents read: source -> text
    dropped: list[str] = field(default_factory=list)  # sentences removed by verification
    parts: list[str] = field(default_factory=list)  # the answer's sentences, each with its citation
    seen: list[str] = field(default_factory=list)  # sources the model was shown (hits and reads)

    def to_json(self) -> dict:
        """The ``--json`` object: answer, citations, steps, tokens, seconds, stop_reason."""
        return {
            "answer": self.answer,
            "citations": [
                {"source": c.source, "text": c.text, "verified": bool(c.verified)}
                for c in self.citations
            ],
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
    ``mode="verify"`` also revises it."""
    if run.stop_reason != "answer" and not run.short:
        parts = _partial(run)
    else:
        parts = compose(
            run.question, run.short, run.cited, run.sources, [h.passage.source for h in run.hits]
        )
    parts = [p for p in parts if run.defences.check(p)]  # the post-check drops a part, or keeps it
    parts = parts or ["The answer was withheld by the post-check."]
    checks = [c for p in parts for c in verify_citations(p, run.sources)]
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
        found = verify_citations(part, result.sources)
        if all(c.verified for c in found):
            kept.append(part)
            checks += found
            continue
        bare = re.sub(r"\s*\[[^\[\]]*\]", "", part).strip().rstrip(".")
        for src, text in result.sources.items():
            again = verify_citations(f"{bare} [{src}].", {src: text})
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
    cs = citation_scores(result.answer, result.sources)
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
