"""The research agent: search, read, take notes, answer with a citation per sentence, verify.

``research(question, corpus, mode=...)`` answers from a folder (``llmlab.corpus.Corpus``) and
returns a ``ResearchResult`` whose ``to_json()`` is the ``llmlab research --json`` object. Modes,
from cheapest to most careful (research-agent.ipynb measures each):
- ``"rag"``: Phase 4's pipeline, no loop: search the question, put the passages in the prompt,
  the model writes the short answer and cites a passage ``[n]``.
- ``"agent"``: the loop of ``llmlab.agent.run_agent``: the model chooses ``search`` / ``read``
  calls (constrained decoding keeps them valid) until it calls ``final_answer``. With
  ``first_search=True`` (default) the code makes the first search for the question, so the
  model starts from results instead of answering from its weights (which it did otherwise).
- ``"plan"``: sub-questions first (the model proposes search queries; a rule splits "X or Y"
  comparisons when the model's plan does not copy the question), then search and read for each,
  take notes (the sentences of each document that share most words with the question), and
  answer from the notes.
- ``"verify"``: ``"plan"`` + every citation checked with ``llmlab.citations.verify_citations``;
  an unsupported sentence is re-cited to a document that supports it, or dropped.

Division of labour with a 135M model: the model does what it can (extract a short answer from
given text, copy a query, pick among sources it was shown); the deterministic parts carry the
rest: which documents to read, the notes, the evidence sentence quoted under the answer (copied,
so it is supported by construction), the citation check and the revision. Every answer
sentence ends with ``[source]`` (a path relative to the corpus).

Budgets (``llmlab.agent.Budget``: steps, tokens, wall seconds) are checked before every step;
when one runs out the run stops with a partial answer and ``stop_reason``. Prompt-injection
defences are switchable (``defences=llmlab.injection.Defences(...)``, all on by default): tool
results marked as data, instruction-like sentences stripped from them (what is stripped is also
what citations are checked against), a system-prompt rule, and a post-check of the answer.

``research_many`` runs many questions through the non-agent modes with each model call batched
across questions (``chat.complete_batch``); the agent mode runs one question at a time.

The deterministic steps -- query splitting, notes, answer wording, correctness checks,
``score`` -- live in ``llmlab.research_steps``; this module is the agent and pipeline that use
them (their public names are re-exported here: ``from llmlab.research import score`` works).

Leaves out: writing tools of any kind (the agent can only search and read), web search,
streaming, re-ranking and multi-turn follow-ups.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from llmlab.agent import AgentStep, Budget
from llmlab.corpus import Corpus
from llmlab.injection import Defences, strip_instructions
from llmlab.rag import extract_answer, extract_citations
from llmlab.research_steps import (
    answer_messages,
    claim,
    compose,
    contains,
    copied_queries,
    is_correct,
    partial_answer,
    score,
    sentences,
    split_question,
    summary,
    take_notes,
    top_sources,
)

# the steps (llmlab.research_steps) stay importable from here, as before the split
__all__ = ["MODES", "ResearchResult", "research", "research_many", "revise", "score",
           "split_question", "copied_queries", "sentences", "take_notes", "claim", "contains",
           "is_correct", "summary"]

MODES = ("rag", "agent", "plan", "verify")
K = 3  # passages per search
ANSWER_TOKENS = 24  # the short answer is one line
PLAN_TOKENS = 40
CALL_TOKENS = 64  # one tool call of the agent: a search query or a short final answer
SYSTEM = ("You are a research assistant. Search the documents, read the most relevant one, then "
          "call final_answer with a one-sentence answer that cites its source file as [file].")
PLAN_INSTRUCTION = ("Write the search queries needed to answer the question, one per line. "
                    "Copy the names from the question.")


@dataclass
class ResearchResult:
    """One research run: the answer (every sentence cites ``[source]``), its checked citations,
    the trace, and what it cost."""

    question: str
    mode: str
    answer: str
    short_answer: str  # the model's extracted answer: what correctness is scored on
    citations: list[Any]  # llmlab.citations.CitationCheck(sentence, source, text, verified)
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
            "citations": [{"source": c.source, "text": c.text, "verified": bool(c.verified)}
                          for c in self.citations],
            "steps": [{"tool": s.tool or s.kind, "arguments": s.arguments or {},
                       "result": summary(s.result)} for s in self.steps],
            "tokens": int(self.tokens),
            "seconds": round(float(self.seconds), 3),
            "stop_reason": self.stop_reason,
        }


class _Stop(Exception):
    """A budget ran out: ``reason`` is the stop reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Run:
    """The state of one question's run through the pipeline."""

    def __init__(self, question: str, budget: Budget) -> None:
        self.question, self.budget, self.spent = question, budget, 0.0
        self.steps: list[AgentStep] = []
        self.tokens, self.stop_reason = 0, "answer"
        self.queries: list[str] = []
        self.hits: list[Any] = []  # CorpusHit, best first, one per source
        self.by_query: dict[str, list[Any]] = {}  # query -> its hits
        self.sources: dict[str, str] = {}
        self.raw, self.short, self.cited = "", "", ""

    def seconds(self) -> float:
        """Seconds spent on this question (its share of each batched call, when batched)."""
        return self.spent

    def check(self) -> None:
        """Raise ``_Stop`` if the next step would go over a budget."""
        if self.stop_reason != "answer":
            raise _Stop(self.stop_reason)
        b = self.budget
        reason = ("max_steps" if len(self.steps) >= b.max_steps else
                  "max_tokens" if self.tokens >= b.max_tokens else
                  "max_seconds" if self.seconds() >= b.max_seconds else None)
        if reason:
            self.stop_reason = reason
            raise _Stop(reason)

    def add(self, kind: str, tool: str | None, arguments: dict | None, result: str, *,
            ok: bool = True, tokens: int = 0, seconds: float = 0.0, raw: str = "") -> None:
        self.tokens, self.spent = self.tokens + tokens, self.spent + seconds
        self.steps.append(AgentStep(len(self.steps), kind, tool, arguments, result, ok, tokens,
                                    seconds, raw))


# --- the pipeline (non-agent modes), batched across questions ----------------------------------


def _wrap(text: str, source: str, defences: Defences) -> str:
    return defences.wrap(text, source, note=False)


def _passages(run: _Run, notes: bool, defences: Defences) -> tuple[list[str], list[str]]:
    """The passages the model reads and their sources: search snippets, or notes of each read doc."""
    if notes:
        pairs = [(src, " ".join(take_notes(run.question, src, text)))
                 for src, text in run.sources.items()]
    else:
        pairs = [(h.source, h.snippet) for h in run.hits]
    return [_wrap(t, s, defences) for s, t in pairs], [s for s, _ in pairs]


def _search(run: _Run, corpus: Corpus, query: str, k: int, defences: Defences) -> None:
    run.check()
    t = time.perf_counter()
    hits = run.by_query[query] = corpus.search(query, k=k)
    seen = {h.source for h in run.hits}
    run.hits += [h for h in hits if h.source not in seen and not seen.add(h.source)]
    result = "\n".join(_wrap(h.snippet, h.source, defences) for h in hits) or "No results."
    run.add("tool", "search", {"query": query}, result, seconds=time.perf_counter() - t)


def _read(run: _Run, corpus: Corpus, source: str, defences: Defences) -> None:
    run.check()
    t = time.perf_counter()
    try:
        text, ok = _source_text(corpus, source, defences), True
        run.sources[source] = text
    except ValueError as exc:  # the sandbox refused, or no such file
        text, ok = f"Error: {exc}", False
    run.add("tool", "read", {"path": source}, _wrap(text, source, defences) if ok else text,
            ok=ok, seconds=time.perf_counter() - t)


def _batched(chat: Any, runs: list[_Run], chats: list[list[dict]], kind: str,
             max_tokens: int) -> list[str]:
    """One batched model call for ``runs`` (each already budget-checked); usage to each run."""
    t = time.perf_counter()
    stop = ["\n"] if kind == "answer" else None
    results = chat.complete_batch(chats, max_tokens=max_tokens, stop=stop)
    share = (time.perf_counter() - t) / max(len(runs), 1)
    for run, res in zip(runs, results, strict=True):
        run.add(kind, kind, None, res.text, tokens=res.usage.total_tokens, seconds=share,
                raw=res.text)
    return [r.text for r in results]


def _live(runs: list[_Run]) -> list[_Run]:
    ok = []
    for run in runs:
        try:
            run.check()
            ok.append(run)
        except _Stop:
            pass
    return ok


def _pipeline(runs: list[_Run], corpus: Corpus, chat: Any, mode: str, k: int,
              defences: Defences) -> None:
    plan = mode in ("plan", "verify")
    if plan:
        live = _live(runs)
        if live:
            chats = [[{"role": "system", "content": PLAN_INSTRUCTION},
                      {"role": "user", "content": r.question}] for r in live]
            for run, text in zip(live, _batched(chat, live, chats, "plan", PLAN_TOKENS), strict=True):
                rule = split_question(run.question)
                model = copied_queries(text, run.question)
                run.queries = model if len(model) >= len(rule) else rule
    for run in runs:
        try:
            for q in run.queries or [run.question]:
                _search(run, corpus, q, k, defences)
            if plan:
                per_query = max(1, 2 // max(len(run.queries), 1))
                for src in top_sources(run.by_query, per_query):
                    _read(run, corpus, src, defences)
        except _Stop:
            pass
    live = [r for r in _live(runs) if r.hits]
    if not live:
        return
    prompts = [_passages(r, plan, defences) for r in live]
    chats = [answer_messages(r.question, p, defences) for r, (p, _) in zip(live, prompts, strict=True)]
    for run, (passages, srcs), raw in zip(live, prompts, _batched(chat, live, chats, "answer",
                                                                   ANSWER_TOKENS), strict=True):
        run.raw, run.short = raw, extract_answer(raw)
        cites = extract_citations(raw, len(srcs))
        with_answer = [s for s, p in zip(srcs, passages, strict=True) if contains(p, run.short)]
        run.cited = srcs[cites[0] - 1] if cites else (with_answer or srcs)[0]
        if not plan:  # rag read nothing: the cited passage's document is what it cites
            run.sources.setdefault(run.cited, _source_text(corpus, run.cited, defences))


# --- the agent mode ----------------------------------------------------------------------------


def _agent(run: _Run, corpus: Corpus, chat: Any, k: int, defences: Defences, constrained: Any,
           first_search: bool) -> None:
    from llmlab.agent import assistant_message, run_agent, tool_message
    from llmlab.corpus import corpus_tools
    from llmlab.tools import ToolCall, run_tool

    tools = corpus_tools(corpus, wrap=defences.wrap, k=k)
    messages = [{"role": "system", "content": defences.system(SYSTEM)},
                {"role": "user", "content": run.question}]
    if first_search:  # the code makes the first call, as "retrieve first" frameworks do
        call = ToolCall("search", {"query": run.question}, id="call_0")
        result = run_tool(tools, call)
        run.add("tool", "search", call.arguments, result.content, ok=result.ok)
        messages += [assistant_message("", [call]), tool_message(result)]
    left = Budget(max(run.budget.max_steps - len(run.steps), 1), run.budget.max_tokens,
                  max(run.budget.max_seconds - run.seconds(), 1e-3))
    agent_run = run_agent(chat, run.question, tools, budget=left, constrained=constrained,
                          messages=messages, max_tokens=CALL_TOKENS)
    run.steps += agent_run.steps
    run.spent += agent_run.seconds
    for s in run.steps:
        if s.tool == "read" and s.ok and isinstance((s.arguments or {}).get("path"), str):
            run.sources.setdefault(s.arguments["path"],
                                   _source_text(corpus, s.arguments["path"], defences))
        if s.tool == "search" and s.ok and isinstance((s.arguments or {}).get("query"), str):
            known = {h.source for h in run.hits}
            run.hits += [h for h in corpus.search(s.arguments["query"], k=k) if h.source not in known]
    run.tokens, run.stop_reason = agent_run.tokens, agent_run.stop_reason
    run.raw = agent_run.answer if agent_run.stop_reason == "answer" else ""  # else: _partial
    cited = re.findall(r"\[([^\[\]]+\.\w+)\]", run.raw)
    run.short = extract_answer(re.sub(r"\[[^\[\]]*\]", "", run.raw))
    with_answer = [s for s, t in run.sources.items() if contains(t, run.short)]
    # the model's own citation is kept even if it names no file: the check marks it unverified
    run.cited = (cited or with_answer or list(run.sources) or [h.source for h in run.hits] or [""])[0]
    if run.cited and run.cited not in run.sources and _exists(corpus, run.cited):
        run.sources[run.cited] = _source_text(corpus, run.cited, defences)


def _source_text(corpus: Corpus, source: str, defences: Defences) -> str:
    """A document as the model saw it (instruction-like sentences stripped if that defence is on)."""
    text = corpus.read(source)
    return strip_instructions(text) if defences.strip else text


def _exists(corpus: Corpus, source: str) -> bool:
    try:
        corpus.resolve(source)
        return True
    except ValueError:
        return False


# --- verification and the public entry points --------------------------------------------------


def _finish(run: _Run, mode: str, defences: Defences) -> ResearchResult:
    from llmlab.citations import verify_citations

    if run.stop_reason != "answer" and not run.short:
        parts = _partial(run)
    else:
        parts = compose(run.question, run.short, run.cited, run.sources, [h.source for h in run.hits])
    parts = [p for p in parts if defences.check(p)]  # the post-check drops a part, or keeps it
    parts = parts or ["The answer was withheld by the post-check."]
    checks = [c for p in parts for c in verify_citations(p, run.sources)]
    seen = list(dict.fromkeys([h.source for h in run.hits] + list(run.sources)))
    res = ResearchResult(run.question, "plan" if mode == "verify" else mode, " ".join(parts),
                         run.short, checks, run.steps, run.tokens, run.seconds(), run.stop_reason,
                         dict(run.sources), parts=parts, seen=seen)
    return revise(res) if mode == "verify" else res


def _partial(run: _Run) -> list[str]:
    """What a stopped run can still say (``partial_answer``); with no document read, the best
    search hit's snippet stands in for one (and is what its citation is checked against)."""
    if not run.sources and run.hits:
        h = run.hits[0]
        run.sources[h.source] = h.snippet
    return partial_answer(run.question, run.stop_reason, run.sources)


def revise(result: ResearchResult) -> ResearchResult:
    """The verify step: each answer sentence whose citation the check does not verify is
    re-cited to a document read that supports it, or dropped. No model call: a result of
    ``mode="plan"`` revised is exactly what ``mode="verify"`` returns."""
    from llmlab.citations import verify_citations

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
    return replace(result, mode="verify", answer=" ".join(kept), parts=kept, citations=checks,
                   dropped=result.dropped + dropped,
                   short_answer=result.short_answer if answered else "")


def _setup(question: str, corpus: str | Path | Corpus, mode: str) -> Corpus:
    if not isinstance(question, str) or not question.strip():
        raise ValueError("The question is empty: ask something the documents can answer.")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
    return corpus if isinstance(corpus, Corpus) else Corpus(corpus)


def research(question: str, corpus: str | Path | Corpus, *, chat: Any = None,
             budget: Budget | None = None, mode: str = "agent", k: int = K,
             defences: Defences | None = None, constrained: Any = True,
             first_search: bool = True) -> ResearchResult:
    """Answer ``question`` from ``corpus`` (a folder or a ``Corpus``), citing every sentence.

    ``research("Who was born first, X or Y?", folder, mode="verify").answer`` ->
    ``"X [X.txt]. X (born 1867) was ... [X.txt]. ..."``. Raises ValueError for an empty question,
    a missing/empty folder, an unknown mode or a budget <= 0.
    """
    return research_many([question], corpus, chat=chat, budget=budget, mode=mode, k=k,
                         defences=defences, constrained=constrained, first_search=first_search)[0]


def research_many(questions: Sequence[str], corpus: str | Path | Corpus, *, chat: Any = None,
                  budget: Budget | None = None, mode: str = "verify", k: int = K,
                  defences: Defences | None = None, constrained: Any = True,
                  first_search: bool = True) -> list[ResearchResult]:
    """``research`` for many questions; each model call of the non-agent modes is one batch.
    Each question keeps its own budget; its seconds are its share of each batched call."""
    if isinstance(questions, str) or not questions:
        raise ValueError("questions must be a non-empty list of questions.")
    corp = _setup(questions[0], corpus, mode)
    for q in questions[1:]:
        _setup(q, corp, mode)
    budget = budget or Budget()
    defences = Defences.all() if defences is None else defences
    if chat is None:
        from llmlab.chat import load_chat

        chat = load_chat()
    runs = [_Run(q.strip(), budget) for q in questions]
    if mode == "agent":
        for run in runs:
            _agent(run, corp, chat, k, defences, constrained, first_search)
    else:
        _pipeline(runs, corp, chat, mode, k, defences)
    return [_finish(run, mode, defences) for run in runs]
