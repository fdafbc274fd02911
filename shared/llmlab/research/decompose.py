"""The ``facts`` mode: the question's form read by rule, each fact copied by the model, the
reasoning done by code -- for many questions at once, each step on the question's run record.

For every question (``llmlab.research.run.Run``):

1. ``plan``: ``llmlab.research.forms.parse_question`` reads its form (lookup, compare, chain);
   no model call. A question no rule reads is handed back to the caller (the general pipeline
   answers it).
2. ``find``, for each lookup: the search, the title match that overrides it, the article(s)
   whose opening the model reads (``llmlab.research.facts.read_for``);
3. ``extract``: the model chooses a span for every lookup of every question in one batch
   (``llmlab.research.facts.decide``); a chain then does 2-3 again for its second lookup;
4. ``reason``: ``llmlab.research.reasoning.conclude`` compares or chains the facts and checks
   each against the lines it cites.

Every step is checked against the run's budget first (``Run.check``); a run stopped midway
keeps what it found and ends with a partial answer. Defences: with ``strip`` on, sentences that
read like orders are never read (``llmlab.research.injection.strip_instructions``); the model
reads no system prompt here, so ``mark`` and ``rule`` have nothing to act on; ``post`` runs on
the answer as in every mode (``llmlab.research.run.finish``).

Leaves out: the other modes (``llmlab.research.agent``) and the result record
(``llmlab.research.run``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from llmlab.research.facts import Fact, Reading, decide, read_for
from llmlab.research.forms import Ask, Form, parse_question, then_ask
from llmlab.research.injection import strip_instructions
from llmlab.research.reasoning import conclude
from llmlab.research.run import Run, Stop


def describe(form: Form) -> str:
    """The plan in words: ``compare: the year of Jaws (film) | the year of The Godfather (film);
    the first wins``."""
    asks = " | ".join(
        f"the {a.relation} of {a.entity}" + (f" ({a.noun})" if a.noun else "") for a in form.asks
    )
    if form.kind == "compare":
        return f"compare: {asks}; the {form.pick} wins"
    if form.kind == "chain":
        return f"chain: {asks}, then {form.then.replace('{}', '<that answer>')!r}"
    return f"lookup: {asks}"


def _keep(run: Run) -> Any:
    """The sentence filter of ``run``'s defences: with ``strip``, an order is never read."""
    if not run.defences.strip:
        return None
    return lambda sentence: strip_instructions(sentence) == sentence


def _find(run: Run, ask: Ask, k: int) -> Reading | None:
    """One ``find`` step: the search, the title match, the article(s) read (None if the budget
    stops it first)."""
    try:
        run.check()
    except Stop:
        return None
    t = time.perf_counter()
    reading = read_for(run.corpus, ask, k=k, keep=_keep(run))
    known = {h.passage.source for h in run.hits}
    for h in reading.hits:
        if h.passage.source not in known:
            known.add(h.passage.source)
            run.hits.append(h)
    read = [c.doc.path for c in reading.candidates]
    for c in reading.candidates:
        run.sources.setdefault(c.doc.path, c.doc.text)
    how = "its title names it" if reading.by_title else "it names it"
    result = f"search ranked {', '.join(reading.seen[:3]) or 'nothing'}; " + (
        f"read {', '.join(read)} ({how})" if read else "no document names it"
    )
    query = f"{ask.entity} {ask.noun}".strip()
    run.add("find", None, {"query": query, "read": read}, result, seconds=time.perf_counter() - t)
    return reading


def _extract(chat: Any, jobs: Sequence[tuple[Run, Reading]]) -> list[Fact | None]:
    """One model batch for every lookup of ``jobs``; one ``extract`` step per run (its share of
    the batch's seconds). A run over budget gets None for its lookups."""
    live = []
    for run in dict.fromkeys(run for run, _ in jobs):  # each run once, in order
        try:
            run.check()
            live.append(run)
        except Stop:
            continue
    todo = [(run, r) for run, r in jobs if run in live]
    out: dict[int, Fact] = {}
    if todo:
        t = time.perf_counter()
        facts = decide(chat, [r for _, r in todo])
        share = (time.perf_counter() - t) / len(live)
        for run in live:
            mine = [(r, f) for (owner, r), f in zip(todo, facts, strict=True) if owner is run]
            for r, f in mine:
                out[id(r)] = f
            said = "; ".join(
                f"{r.ask.cloze} {f.value!r} ({f.where})"
                if f.value
                else f"{r.ask.question} none ({f.how})"
                for r, f in mine
            )
            asks = [r.ask.question for r, _ in mine]
            tokens = sum(f.tokens for _, f in mine)
            run.add("extract", None, {"asks": asks}, said, tokens=tokens, seconds=share)
    return [out.get(id(r)) for _, r in jobs]


def run_facts(runs: Sequence[Run], chat: Any, k: int = 5) -> list[Run]:
    """The facts mode over ``runs`` (see the module docstring). Sets ``run.finding``,
    ``run.short`` and ``run.cited`` on each run it answers; returns the runs whose question no
    rule reads, untouched, for the general pipeline."""
    forms: dict[int, Form] = {}
    general = []
    for run in runs:
        form = parse_question(run.question)
        if form is None:
            general.append(run)
            continue
        try:
            run.check()
        except Stop:
            continue
        run.add("plan", None, None, describe(form))
        forms[id(run)] = form
    todo = [run for run in runs if id(run) in forms]
    facts: dict[int, list[Fact]] = {id(run): [] for run in todo}
    jobs = [(run, r) for run in todo for a in forms[id(run)].asks if (r := _find(run, a, k))]
    for (run, _), fact in zip(jobs, _extract(chat, jobs), strict=True):
        if fact is not None:
            facts[id(run)].append(fact)
    second = []
    for run in todo:
        form, got = forms[id(run)], facts[id(run)]
        ask = then_ask(form, got[0].value) if form.kind == "chain" and got else None
        if ask is not None and (reading := _find(run, ask, k)):
            second.append((run, reading))
    for (run, _), fact in zip(second, _extract(chat, second), strict=True):
        if fact is not None:
            facts[id(run)].append(fact)
    for run in todo:
        try:
            run.check()
        except Stop:
            continue
        finding = conclude(forms[id(run)], facts[id(run)])
        run.finding = finding
        run.short = finding.short
        run.cited = finding.checks[0].fact.where if finding.checks else ""
        said = finding.conclusion or " ".join(c.sentence for c in finding.checks if c.fact.value)
        run.add("reason", None, None, said if finding.short else f"no answer: {finding.why}")
    return general
