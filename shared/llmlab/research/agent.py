"""The research agent: search, read, take notes, answer with a citation per sentence, verify.

``research(question, corpus, mode=...)`` answers from a folder (``llmlab.research.corpus.Corpus``) and
returns a ``ResearchResult`` whose ``to_json()`` is the ``llmlab research --json`` object. Modes,
from cheapest to most careful (research-agent.ipynb measures each):
- ``"rag"``: Phase 4's pipeline, no loop: search the question, put the passages in the prompt,
  the model writes the short answer and cites a passage ``[n]``.
- ``"agent"``: the loop of ``llmlab.agents.loop.run_agent``: the model chooses ``search`` / ``read``
  calls (constrained decoding keeps them valid) until it calls ``final_answer``. With
  ``first_search=True`` (default) the code makes the first search for the question, so the
  model starts from results instead of answering from its weights (which it did otherwise).
- ``"plan"``: sub-questions first (the model proposes search queries; a rule splits "X or Y"
  comparisons when the model's plan does not copy the question), then search and read for each,
  take notes (the sentences of each document that share most words with the question), and
  answer from the notes.
- ``"verify"``: ``"plan"`` + every citation checked with ``llmlab.rag.citations.verify_citations``;
  an unsupported sentence is re-cited to a document that supports it, or dropped.
- ``"facts"`` (the default): code reads the question's form (lookup, comparison, chain), finds
  each thing's article by its title, the model copies one fact per lookup (a span of the
  article's opening, scored whole), and code compares or chains the facts and cites the lines
  each came from (``llmlab.research.decompose``). A question no rule reads goes to ``"verify"``.

Division of labour with a 135M model: the model does what it can (extract a short answer from
given text, copy a query, pick among sources it was shown); the deterministic parts carry the
rest: which documents to read, the notes, the evidence sentence quoted under the answer (copied,
so it is supported by construction), the citation check and the revision. Every answer
sentence ends with ``[source]`` (a path relative to the corpus; ``[source:lines]`` in the facts
mode), and every checked citation carries the lines it rests on (``run.CheckedCitation``).

Budgets (``llmlab.agents.loop.Budget``: steps, tokens, wall seconds) are checked before every step;
when one runs out the run stops with a partial answer and ``stop_reason``. Prompt-injection
defences are switchable (``defences=llmlab.research.injection.Defences(...)``, all on by default): tool
results marked as data, instruction-like sentences stripped from them (what is stripped is also
what citations are checked against), a system-prompt rule, and a post-check of the answer.

``research_many`` runs many questions through the non-agent modes with each model call batched
across questions (``chat.complete_batch``; rows of similar prompt length together, so little
is spent on padding; the facts mode scores every lookup in one batch); each question may have
its own corpus and defences (the injection experiment batches five corpora x two defence
settings). The agent mode runs one at a time. ``progress=True`` prints a line per stage.

The run state, the result and the verify step (``revise``) live in ``llmlab.research.run``, the
text steps (queries, notes) in ``llmlab.research.steps``, the facts mode in
``llmlab.research.decompose``.

Leaves out: writing tools of any kind (the agent can only search and read), web search,
streaming, re-ranking and multi-turn follow-ups.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llmlab.agents.run_record import Budget
from llmlab.rag.answering import extract_answer, extract_citations
from llmlab.research.corpus import Corpus
from llmlab.research.decompose import run_facts
from llmlab.research.injection import Defences
from llmlab.research.run import ResearchResult, Run, Stop, finish
from llmlab.research.steps import (
    answer_messages,
    contains,
    copied_queries,
    split_question,
    take_notes,
    top_sources,
)

MODES = ("rag", "agent", "plan", "verify", "facts")
DEFAULT_MODE = "facts"  # most right answers, fewest wrong ones shown (research-agent.ipynb)
K = 3  # passages per search
ANSWER_TOKENS = 24  # the short answer is one line
PLAN_TOKENS = 40
CALL_TOKENS = 64  # one tool call of the agent: a search query or a short final answer
SYSTEM = (
    "You are a research assistant. Search the documents, read the most relevant one, then "
    "call final_answer with a one-sentence answer that cites its source file as [file]."
)
PLAN_INSTRUCTION = (
    "Write the search queries needed to answer the question, one per line. "
    "Copy the names from the question."
)
PAD_COST = 25  # one more batch costs a decode step per new token: ~70 ms ~ 25 prompt tokens of
# prefill (2-core rule of thumb: 14 steps/s at batch 1, 380 prompt tokens/s)


# --- the pipeline (non-agent modes), batched across questions ----------------------------------


def _passages(run: Run, notes: bool) -> tuple[list[str], list[str]]:
    """The passages the model reads and their sources: search snippets, or notes of each read doc."""
    if notes:
        pairs = [
            (src, " ".join(take_notes(run.question, src, text)))
            for src, text in run.sources.items()
        ]
    else:
        pairs = [(h.passage.source, h.text) for h in run.hits]
    return [run.defences.wrap(t, s, note=False) for s, t in pairs], [s for s, _ in pairs]


def _search(run: Run, query: str, k: int) -> None:
    run.check()
    t = time.perf_counter()
    hits = run.by_query[query] = run.corpus.search(query, k=k)
    seen = {h.passage.source for h in run.hits}
    run.hits += [h for h in hits if h.passage.source not in seen and not seen.add(h.passage.source)]
    result = "\n".join(run.defences.wrap(h.text, h.passage.source, note=False) for h in hits)
    run.add(
        "tool", "search", {"query": query}, result or "No results.", seconds=time.perf_counter() - t
    )


def _read(run: Run, source: str) -> None:
    run.check()
    t = time.perf_counter()
    try:
        text, ok = run.text(source), True
        run.sources[source] = text
    except ValueError as exc:  # the sandbox refused, or no such file
        text, ok = f"Error: {exc}", False
    run.add(
        "tool",
        "read",
        {"path": source},
        run.defences.wrap(text, source, note=False) if ok else text,
        ok=ok,
        seconds=time.perf_counter() - t,
    )


def length_groups(lengths: Sequence[int], new_tokens: int) -> list[list[int]]:
    """Row indices cut into batches of similar prompt length (fewest padded tokens + a cost of
    ``PAD_COST * new_tokens`` per extra batch, for its decode steps): ``length_groups([50, 400,
    410, 60], 24)`` -> ``[[0, 3], [1, 2]]``. Sorted by length; a dynamic program over the cuts."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    n, per_batch = len(order), PAD_COST * new_tokens
    best, cut = [0.0] + [float("inf")] * n, [0] * (n + 1)  # best[j]: cost of the first j rows
    for j in range(1, n + 1):
        for i in range(j):  # rows i..j-1 in one batch, padded to the longest (the last)
            cost = best[i] + (j - i) * lengths[order[j - 1]] + per_batch
            if cost < best[j]:
                best[j], cut[j] = cost, i
    groups, j = [], n
    while j:
        groups.append(order[cut[j] : j])
        j = cut[j]
    return groups[::-1]


def _batched(
    chat: Any, runs: list[Run], chats: list[list[dict]], kind: str, max_tokens: int
) -> list[str]:
    """The model calls for ``runs`` (each already budget-checked), batched by prompt length;
    usage to each run, seconds shared within each batch."""
    stop = ["\n"] if kind == "answer" else None
    lengths = (
        [len(chat.prompt_ids(c)) for c in chats]
        if hasattr(chat, "prompt_ids")
        else [0] * len(chats)
    )  # a server batches by itself: one call
    texts = [""] * len(chats)
    for group in length_groups(lengths, max_tokens):
        t = time.perf_counter()
        results = chat.complete_batch([chats[i] for i in group], max_tokens=max_tokens, stop=stop)
        share = (time.perf_counter() - t) / len(group)
        for i, res in zip(group, results, strict=True):
            runs[i].add(
                kind,
                kind,
                None,
                res.text,
                tokens=res.usage.total_tokens,
                seconds=share,
                raw=res.text,
            )
            texts[i] = res.text
    return texts


def _say(progress: bool, text: str) -> None:
    """A line of progress (a notebook cell or a terminal shows where a long run is)."""
    if progress:
        print(text, flush=True)


def _pipeline(runs: list[Run], chat: Any, mode: str, k: int, progress: bool = False) -> None:
    plan = mode in ("plan", "verify")
    t0 = time.perf_counter()
    if plan:
        live = [r for r in runs if r.live()]
        if live:
            _say(progress, f"{mode}: the model writes search queries for {len(live)} questions")
            chats = [
                [
                    {"role": "system", "content": PLAN_INSTRUCTION},
                    {"role": "user", "content": r.question},
                ]
                for r in live
            ]
            for run, text in zip(
                live, _batched(chat, live, chats, "plan", PLAN_TOKENS), strict=True
            ):
                rule = split_question(run.question)
                model = copied_queries(text, run.question)
                run.queries = model if len(model) >= len(rule) else rule
    _say(progress, f"{mode}: searching and reading ({time.perf_counter() - t0:.1f} s so far)")
    for run in runs:
        try:
            for q in run.queries or [run.question]:
                _search(run, q, k)
            if plan:
                per_query = max(1, 2 // max(len(run.queries), 1))
                for src in top_sources(run.by_query, per_query):
                    _read(run, src)
        except Stop:
            pass
    live = [r for r in runs if r.live() and r.hits]
    if not live:
        return
    _say(
        progress,
        f"{mode}: the model answers {len(live)} questions ({time.perf_counter() - t0:.1f} s so far)",
    )
    prompts = [_passages(r, plan) for r in live]
    chats = [
        answer_messages(r.question, p, r.defences) for r, (p, _) in zip(live, prompts, strict=True)
    ]
    for run, (passages, srcs), raw in zip(
        live, prompts, _batched(chat, live, chats, "answer", ANSWER_TOKENS), strict=True
    ):
        run.raw, run.short = raw, extract_answer(raw)
        cites = extract_citations(raw, len(srcs))
        with_answer = [s for s, p in zip(srcs, passages, strict=True) if contains(p, run.short)]
        run.cited = srcs[cites[0] - 1] if cites else (with_answer or srcs)[0]
        if not plan:  # rag read nothing: the cited passage's document is what it cites
            run.sources.setdefault(run.cited, run.text(run.cited))
    _say(progress, f"{mode}: done in {time.perf_counter() - t0:.1f} s")


# --- the agent mode ----------------------------------------------------------------------------


def _agent(run: Run, chat: Any, k: int, constrained: Any, first_search: bool) -> None:
    from llmlab.agents.loop import assistant_message, run_agent, tool_message
    from llmlab.research.corpus import corpus_tools
    from llmlab.tool_use.tools import ToolCall, run_tool

    corpus, defences = run.corpus, run.defences
    tools = corpus_tools(corpus, wrap=defences.wrap, k=k)
    messages = [
        {"role": "system", "content": defences.system(SYSTEM)},
        {"role": "user", "content": run.question},
    ]
    if first_search:  # the code makes the first call, as "retrieve first" frameworks do
        call = ToolCall(name="search", arguments={"query": run.question}, id="call_0")
        result = run_tool(tools, call)
        run.add("tool", "search", call.arguments, result.content, ok=result.ok)
        messages += [assistant_message("", [call]), tool_message(result)]
    agent_run = run_agent(  # goes on with this run's record: its steps and budget count
        chat,
        run.question,
        tools,
        constrained=constrained,
        messages=messages,
        max_tokens=CALL_TOKENS,
        record=run.record,
    )
    for s in run.steps:
        if s.tool == "read" and s.ok and isinstance((s.arguments or {}).get("path"), str):
            run.sources.setdefault(s.arguments["path"], run.text(s.arguments["path"]))
        if s.tool == "search" and s.ok and isinstance((s.arguments or {}).get("query"), str):
            known = {h.passage.source for h in run.hits}
            run.hits += [
                h for h in corpus.search(s.arguments["query"], k=k) if h.passage.source not in known
            ]
    run.raw = (
        agent_run.answer if agent_run.stop_reason == "answer" else ""
    )  # else: a partial answer
    cited = re.findall(r"\[([^\[\]]+\.\w+)\]", run.raw)
    run.short = extract_answer(re.sub(r"\[[^\[\]]*\]", "", run.raw))
    with_answer = [s for s, t in run.sources.items() if contains(t, run.short)]
    # the model's own citation is kept even if it names no file: the check marks it unverified
    run.cited = (
        cited or with_answer or list(run.sources) or [h.passage.source for h in run.hits] or [""]
    )[0]
    if run.cited and run.cited not in run.sources and _exists(corpus, run.cited):
        run.sources[run.cited] = run.text(run.cited)


def _exists(corpus: Corpus, source: str) -> bool:
    try:
        corpus.resolve(source)
        return True
    except ValueError:
        return False


# --- the public entry points -------------------------------------------------------------------


def _setup(question: str, corpus: str | Path | Corpus, mode: str) -> Corpus:
    if not isinstance(question, str) or not question.strip():
        raise ValueError("The question is empty: ask something the documents can answer.")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
    return corpus if isinstance(corpus, Corpus) else Corpus(corpus)


def _per_question(value: Any, n: int, name: str) -> list[Any]:
    """``value`` for each of ``n`` questions: a list/tuple gives one each, anything else is shared."""
    if not isinstance(value, list | tuple):
        return [value] * n
    if len(value) != n:
        raise ValueError(
            f"{name} has {len(value)} items for {n} questions: give one per "
            "question, or a single one for all."
        )
    return list(value)


def research(
    question: str,
    corpus: str | Path | Corpus,
    *,
    chat: Any = None,
    budget: Budget | None = None,
    mode: str = DEFAULT_MODE,
    k: int = K,
    defences: Defences | None = None,
    constrained: Any = True,
    first_search: bool = True,
) -> ResearchResult:
    """Answer ``question`` from ``corpus`` (a folder or a ``Corpus``), citing every sentence.

    ``research("Which film came out first: Jaws or The Godfather?", folder).answer`` ->
    ``"The Godfather (1972) came out before Jaws (1975) [The_Godfather.txt:3][Jaws_film.txt:3].
    ..."``. Raises ValueError for an empty question, a missing/empty folder, an unknown mode or
    a budget <= 0.
    """
    return research_many(
        [question],
        corpus,
        chat=chat,
        budget=budget,
        mode=mode,
        k=k,
        defences=defences,
        constrained=constrained,
        first_search=first_search,
    )[0]


def research_many(
    questions: Sequence[str],
    corpus: str | Path | Corpus | Sequence[str | Path | Corpus],
    *,
    chat: Any = None,
    budget: Budget | None = None,
    mode: str = DEFAULT_MODE,
    k: int = K,
    defences: Defences | Sequence[Defences] | None = None,
    constrained: Any = True,
    first_search: bool = True,
    progress: bool = False,
) -> list[ResearchResult]:
    """``research`` for many questions; each model call of the non-agent modes is batched.

    ``corpus`` and ``defences`` are shared, or lists with one per question. Each question keeps
    its own budget; its seconds are its share of each batched call. ``progress=True`` prints a
    line per stage (a long notebook cell shows where it is).
    """
    if isinstance(questions, str) or not questions:
        raise ValueError("questions must be a non-empty list of questions.")
    corpora: dict[int, Corpus] = {}  # one Corpus (and index) per folder object given
    runs = []
    for q, c, d in zip(
        questions,
        _per_question(corpus, len(questions), "corpus"),
        _per_question(defences, len(questions), "defences"),
        strict=True,
    ):
        corp = corpora[id(c)] = _setup(q, corpora.get(id(c), c), mode)
        runs.append(
            Run(
                question=q.strip(),
                corpus=corp,
                budget=budget or Budget(),
                defences=Defences.all() if d is None else d,
            )
        )
    if chat is None:
        from llmlab.chat.local import load_chat

        chat = load_chat()
    general: list[Run] = []
    if mode == "agent":
        for run in runs:
            _agent(run, chat, k, constrained, first_search)
    elif mode == "facts":
        t0 = time.perf_counter()
        _say(progress, f"facts: reading the form of {len(runs)} questions, finding articles")
        general = run_facts(runs, chat, k)
        _say(progress, f"facts: done in {time.perf_counter() - t0:.1f} s")
        if general:  # questions no rule reads: the general pipeline answers them
            _pipeline(general, chat, "verify", k, progress)
    else:
        _pipeline(runs, chat, mode, k, progress)
    return [finish(run, "verify" if run in general else mode) for run in runs]
