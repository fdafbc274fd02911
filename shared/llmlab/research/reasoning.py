"""Reasoning in code: compare and chain facts the model copied, and say what the answer rests on.

The facts come from ``llmlab.research.facts`` (each a span copied from one sentence of one
document, with its file and lines). What a 135M model does worst -- comparing two years,
carrying an answer into the next question -- is a line of code here:

- a **lookup** answers with its one fact: "Jaws was released in 1975.";
- a **compare** puts the two years side by side and picks the earlier (or later) one:
  1972 < 1975, so "The Godfather (1972) came out before Jaws (1975).";
- a **chain** answers its first lookup, puts the answer into the next question
  (``llmlab.research.forms.then_ask``) and answers that: Psycho -> Alfred Hitchcock -> English.

``conclude(form, facts)`` returns a ``Finding``: the short answer (what is scored), the
conclusion (a sentence computed by code, never quoted), one sentence per fact with the lines it
was copied from, and -- when there is no answer -- why: a missing document, a missing span, a
tie. Each fact sentence is checked against exactly the lines it cites
(``llmlab.rag.citations.verify_citations``); a fact the check does not verify withholds the
answer, so an unsupported claim is never shown as the answer.

Leaves out: arithmetic beyond comparing two numbers, chains of more than two lookups, and
answers that need a fact no rule can type (those go to the general pipeline).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from llmlab.rag.citations import verify_citations
from llmlab.research.facts import Fact
from llmlab.research.forms import Form

VERBS = {
    "born": "was born",
    "novel": "was published",
    "poem": "was published",
    "play": "was published",
}


@dataclass(frozen=True)
class FactCheck:
    """One fact as the answer states it: ``sentence`` ("Jaws was released in 1975."), where it
    was copied from (``fact.passage``: file and lines) and whether the citation check verified
    the sentence against those lines."""

    sentence: str
    fact: Fact
    verified: bool

    @property
    def cited(self) -> str:
        """The sentence with its citation: ``Jaws was released in 1975 [Jaws_film.txt:3].``"""
        return f"{self.sentence.rstrip('.')} [{self.fact.where}]."


@dataclass(frozen=True)
class Finding:
    """What the facts answer: ``short`` (the answer, "" if none), ``conclusion`` (computed by
    code from the facts), ``checks`` (each fact, cited and verified), ``why`` (no answer: the
    reason) and ``rule`` (the reasoning step in words: "1972 < 1975")."""

    form: Form
    short: str
    conclusion: str
    checks: tuple[FactCheck, ...]
    why: str = ""
    rule: str = ""

    @property
    def parts(self) -> list[str]:
        """The answer's sentences: the conclusion citing the facts it rests on (or, with no
        answer, why not), then every fact found, with its citation."""
        facts = [c for c in self.checks if c.fact.value]
        if not self.short:
            head = [f"No answer: {self.why}."]
        elif self.conclusion:
            cites = "".join(f"[{c.fact.where}]" for c in facts)
            head = [f"{self.conclusion.rstrip('.')} {cites}."]
        else:
            head = []
        return head + [c.cited for c in facts]


def fact_sentence(fact: Fact) -> str:
    """The fact as a sentence: the ask's answer sentence finished with the copied span.

    ``"Jaws was released in" + "1975"`` -> ``"Jaws was released in 1975."``; a nationality reads
    "Alfred Hitchcock was English."."""
    return f"{fact.ask.cloze} {fact.value}."


def check(fact: Fact) -> FactCheck:
    """``fact`` stated and checked against exactly the lines it was copied from; if those do
    not name the entity the way the question does, against the lines from the article's title
    to them (``Fact.titled``), which then become the citation."""
    sentence = fact_sentence(fact)
    for passage in (fact.passage, fact.titled):
        if not fact.value or passage is None:
            continue
        claim = f"{sentence.rstrip('.')} [{passage.where}]."
        found = verify_citations(claim, {passage.where: passage.text})
        if found and all(c.verified for c in found):
            cited = fact if passage is fact.passage else replace(fact, passage=passage)
            return FactCheck(sentence=sentence, fact=cited, verified=True)
    return FactCheck(sentence=sentence, fact=fact, verified=False)


def missing(fact: Fact) -> str:
    """Why ``fact`` has no value, in the reader's terms."""
    ask = fact.ask
    if fact.how == "no document":
        return f"no document is about {ask.entity!r} (no title names it, no search hit does)"
    if fact.how in ("no option", "not a listed span"):
        kind = {"year": "year", "person": "name", "place": "place name"}.get(
            ask.answer_type, "word"
        )
        return f"{fact.source} has no {kind} that answers {ask.question!r}"
    return f"{ask.question!r} got no answer"


def _year(fact: Fact) -> int:
    return int(fact.value)


def conclude(form: Form, facts: Sequence[Fact]) -> Finding:
    """The answer ``facts`` give to ``form`` (see the module docstring)."""
    checks = tuple(check(f) for f in facts)
    empty = next((f for f in facts if not f.value), None)
    if empty is not None or len(facts) < len(form.asks) + (form.kind == "chain"):
        why = missing(empty) if empty else "the chain stopped before its second lookup"
        return Finding(form=form, short="", conclusion="", checks=checks, why=why)
    unverified = next((c for c in checks if not c.verified), None)
    if unverified is not None:
        why = f"the check does not find {unverified.sentence!r} in {unverified.fact.where}"
        return Finding(form=form, short="", conclusion="", checks=checks, why=why)
    if form.kind == "lookup":
        return Finding(form=form, short=facts[0].value, conclusion="", checks=checks)
    if form.kind == "chain":
        first, second = facts
        conclusion = (
            f"The answer is {second.value}: {fact_sentence(first).rstrip('.')}, and "
            f"{fact_sentence(second)}"
        )
        rule = f"the answer of the first lookup ({first.value}) is the subject of the second"
        return Finding(
            form=form, short=second.value, conclusion=conclusion, checks=checks, rule=rule
        )
    a, b = facts
    if _year(a) == _year(b):
        why = f"both are from {a.value}: neither came {'first' if form.pick == 'first' else 'last'}"
        return Finding(form=form, short="", conclusion="", checks=checks, why=why)
    early, late = (a, b) if _year(a) < _year(b) else (b, a)
    win, lose = (early, late) if form.pick == "first" else (late, early)
    verb = VERBS.get(a.ask.relation) or VERBS.get(a.ask.noun, "came out")
    order = "before" if form.pick == "first" else "after"
    conclusion = f"{win.ask.entity} ({win.value}) {verb} {order} {lose.ask.entity} ({lose.value})."
    rule = f"{early.value} < {late.value}"
    return Finding(form=form, short=win.ask.entity, conclusion=conclusion, checks=checks, rule=rule)
