"""The research agent's deterministic steps: the text logic that needs no model.

Covers:
- Queries: ``split_question`` (a rule: "Who was born first, X or Y?" -> ``["X", "Y"]``) and
  ``copied_queries`` (the lines of the model's plan that copy the question's words, not invent).
- Notes: ``sentences(text)`` (the title line is its own sentence) and ``take_notes(question,
  source, text)``: the sentences sharing most content words with the question, in document order.
- Answer wording: ``claim`` ("Jaws: 1975", a sentence a citation checker can test),
  ``compose`` (the claim with its source, then one evidence sentence copied from each document
  used, so it is supported by its own citation), ``partial_answer`` (what a stopped run can still
  say), ``answer_messages`` (the answer prompt over numbered passages) and ``top_sources`` (which
  search hits to read).
- Checks and scores: ``contains`` / ``is_correct`` (normalised containment, short answers only),
  ``score`` (correct, wrong, gold documents seen, ALCE citation recall/precision, cost) and
  ``summary`` (a tool result on one line, for traces).

Leaves out: the agent itself -- model calls, searching and reading the corpus
(``llmlab.research.agent``), budgets, the citation check and the revision (``llmlab.research.run``);
the citation check's own logic
(``llmlab.rag.citations``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llmlab.evaluation.metrics import normalize_answer
from llmlab.rag.answer_checks import content_words
from llmlab.rag.answering import INSTRUCTION, format_passages
from llmlab.research.corpus import DATA_NOTE

if TYPE_CHECKING:
    from llmlab.research.injection import Defences

NOTES_PER_DOC = 2  # sentences kept from each document read
STOP_WHY = {
    "max_steps": "the step budget",
    "max_tokens": "the token budget",
    "max_seconds": "the time budget",
    "loop": "a repeated call (loop)",
    "error": "an error",
}


def summary(text: str, limit: int = 200) -> str:
    """``text`` on one line, cut at a word to at most ``limit`` characters (then "..."), for
    traces and displays: ``summary("Yalu (Amnok) River", 12) -> "Yalu..."``, never "Yalu (Am"."""
    flat = " ".join(str(text).split())
    if len(flat) <= limit:
        return flat
    cut = flat.rfind(" ", 0, limit - 2)
    return (flat[:cut] if cut > 0 else flat[: limit - 3]).rstrip(",;:") + "..."


def split_question(question: str) -> list[str]:
    """Rule-based sub-queries: a comparison "..., X or Y?" gives ``[X, Y]``; otherwise the question.

    ``split_question("Who was born first, Marie Curie or Albert Einstein?")`` ->
    ``["Marie Curie", "Albert Einstein"]``.
    """
    tail = question.rsplit(",", 1)[-1] if "," in question else question
    tail = re.sub(
        r"^\s*(?:who|which|what)\b.*?\b(?:first|earlier|later|older|larger|bigger)\b\s*:?",
        "",
        tail,
        flags=re.IGNORECASE,
    )
    parts = [p.strip(" ?.!\"'") for p in re.split(r"\s+or\s+", tail) if p.strip(" ?.!")]
    return parts if len(parts) == 2 else [question.strip()]


def copied_queries(text: str, question: str, limit: int = 3) -> list[str]:
    """Lines of the model's plan whose content words all occur in the question (copied, not
    invented), without list markers; at most ``limit``."""
    allowed, out = set(content_words(question)), []
    for line in text.splitlines():
        q = re.sub(r"^\s*(?:[-*\d.)]+\s*)?(?:query\s*\d*\s*:)?\s*", "", line, flags=re.I).strip(
            " \"'"
        )
        words = content_words(q)
        if words and set(words) <= allowed and q.lower() not in (x.lower() for x in out):
            out.append(q)
    return out[:limit]


def sentences(text: str) -> list[str]:
    """The sentences of a document (the title line is its own sentence)."""
    from llmlab.search.chunking import sentence_spans

    out = []
    for line in text.split("\n"):
        out += [line[a:b].strip() for a, b in sentence_spans(line) if line[a:b].strip()]
    return out


def take_notes(question: str, source: str, text: str, n: int = NOTES_PER_DOC) -> list[str]:
    """The ``n`` sentences of ``text`` sharing most content words with ``question`` (ties: the
    earlier sentence), in document order."""
    want = set(content_words(question))
    sents = sentences(text)
    ranked = sorted(
        range(len(sents)),
        key=lambda i: (
            len(sents[i].split()) < 4,  # not the title
            -len(want & set(content_words(sents[i]))),
            i,
        ),
    )[:n]
    return [sents[i] for i in sorted(ranked)]


_NAME = re.compile(r"[A-Z0-9][\w'’.-]*(?:\s+(?:of|the|a|an|de|la|[A-Z0-9][\w'’.-]*))*")


def claim(question: str, short: str) -> str:
    """The answer as a checkable sentence: the names the question is about, then the answer.

    ``claim("In what year was the film Jaws released?", "1975") -> "Jaws: 1975"``. A bare "1975"
    is no claim a citation checker can test (it has one word); "Jaws: 1975" ties it to its subject.
    """
    names = [
        re.sub(r"(?:\s+(?:of|the|a|an|de|la))+$", "", m.group()).strip(" .")
        for m in _NAME.finditer(question, 1)
    ]
    names = [n for n in dict.fromkeys(names) if n]
    subject = ", ".join(names) if names else question.strip().rstrip("?")
    return f"{subject}: {short.rstrip('.')}"


def contains(haystack: str, needle: str) -> bool:
    """Normalised containment (case, punctuation, articles ignored)."""
    n = normalize_answer(needle)
    return bool(n) and f" {n} " in f" {normalize_answer(haystack)} "


def is_correct(short_answer: str, answers: Sequence[str], max_words: int = 12) -> bool:
    """A short answer is correct if it contains a gold answer and is short (an answer that
    copies a whole passage would contain everything)."""
    return len(short_answer.split()) <= max_words and any(
        contains(short_answer, a) for a in answers
    )


def compose(
    question: str, short: str, cited: str, sources: Mapping[str, str], hit_sources: Sequence[str]
) -> list[str]:
    """The answer's sentences: the short answer as a claim with its ``cited`` source, then one
    evidence sentence copied from each document used (so it is supported by its own citation).
    ``sources``: the documents read (source -> text); ``hit_sources``: search hits, best first."""
    if not sources and not short:
        return ["No document was read: no answer."]
    out = []
    if short:
        out.append(f"{claim(question, short)} [{cited or 'no source'}].")
    used = list(dict.fromkeys([cited] + [s for s in hit_sources if s in sources]))
    for src in used[:2]:
        if src in sources:
            best = take_notes(f"{question} {short}", src, sources[src], n=1)
            if best:
                out.append(f"{best[0].rstrip('.')} [{src}].")
    return out


def partial_answer(question: str, stop_reason: str, sources: Mapping[str, str]) -> list[str]:
    """What a stopped run can still say: why it stopped, then the sentence of the first document
    in ``sources`` most relevant to ``question``."""
    why = STOP_WHY.get(stop_reason, stop_reason)
    head = f"Partial answer (stopped by {why})."
    if not sources:
        return [f"{head[:-2]} before any document was found)."]
    src, text = next(iter(sources.items()))
    best = take_notes(question, src, text, n=1)
    return [head, f"{best[0].rstrip('.')} [{src}]."] if best else [head]


def answer_messages(question: str, passages: list[str], defences: Defences) -> list[dict]:
    """The answer prompt: the RAG instruction (with the defences' system rule), the passages
    numbered ``[n]`` (with the data note if tool results are marked), the question."""
    system = defences.system(INSTRUCTION)
    note = f"\n{DATA_NOTE}" if defences.mark else ""
    user = f"Passages:\n{format_passages(passages)}{note}\n\nQuestion: {question}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def top_sources(by_query: Mapping[str, Sequence[Any]], per_query: int) -> list[str]:
    """The documents to read: the best ``per_query`` hits (``.passage.source``) of each query searched."""
    out: list[str] = []
    for hits in by_query.values():
        for h in hits[:per_query]:
            if h.passage.source not in out:
                out.append(h.passage.source)
    return out
