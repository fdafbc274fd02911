"""Question forms: what a question asks, read by rules, so code can plan the work a model cannot.

A 135M model cannot plan ("which two documents do I need, and what do I compare?"): asked for
search queries it answers the question instead. But most research questions come in a few
forms, and a rule reads a form exactly:

- **lookup**: one fact about one thing. "In what year was the film Jaws released?" -> the
  ``year`` of ``Jaws`` (a ``film``); "Who wrote the novel Dracula?" -> its ``author``.
- **compare**: the same fact about two things, then a comparison done by code. "Which film came
  out first: Jaws or The Godfather?" -> the ``year`` of each, the earliest wins.
- **chain**: a fact about a fact. "What nationality was the director of the film Psycho?" ->
  first "Who directed the film Psycho?", then the question again with the answer in its place:
  "What nationality was Alfred Hitchcock?".

``parse_question(question)`` returns a ``Form`` (or ``None`` for a question no rule reads: the
research agent then falls back to its general pipeline). ``Ask`` is one lookup the agent can do
alone: its question written out (``ask.question``, what the model reads), the thing it is about,
the kind of thing (``noun``: film, novel, ...) and the kind of answer (``answer_type``: a year,
a person, a place, a nationality), which fixes what the model may copy
(``llmlab.research.facts``).

``parse_question("Which film came out first: Jaws or The Godfather?")`` ->
``Form(kind="compare", asks=(Ask(relation="year", entity="Jaws", noun="film", ...),
Ask(relation="year", entity="The Godfather", ...)), pick="first")``.

Leaves out: questions with more than two things to compare, superlatives over a set ("the
oldest of these five films"), negations, and any form not listed in ``LOOKUPS`` / ``COMPARE``
/ ``CHAIN`` (``None``: not guessed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NOUNS = "film|movie|novel|book|play|poem|opera|album|song|painting|series|game|city|country"
SAME_NOUN = {"movie": "film", "book": "novel"}  # the word an article's title uses: "Jaws (film)"
ANSWER_TYPE = {  # relation -> the kind of span the answer is
    "year": "year",
    "born": "year",
    "director": "person",
    "author": "person",
    "capital": "place",
    "country": "place",
    "nationality": "nationality",
}
_THE_NOUN = rf"(?:(?:the|a|an)\s+)?(?:(?P<noun>{NOUNS})\s+)?"
_E = r"(?P<entity>[^?]+?)"
LOOKUPS = [  # (relation, pattern); each reads ``entity`` and maybe ``noun``
    (
        "year",
        rf"(?:in\s+)?(?:what|which)\s+year\s+(?:was|were|did)\s+{_THE_NOUN}{_E}\s+"
        r"(?:released|published|written|made|premiered|founded|come\s+out|first\s+published)",
    ),
    (
        "year",
        rf"when\s+(?:was|were|did)\s+{_THE_NOUN}{_E}\s+"
        r"(?:released|published|written|made|premiered|founded|come\s+out|first\s+published)",
    ),
    ("born", rf"(?:in\s+)?(?:what|which)\s+year\s+was\s+{_E}\s+born"),
    ("born", rf"when\s+was\s+{_E}\s+born"),
    ("director", rf"who\s+directed\s+{_THE_NOUN}{_E}"),
    ("director", rf"who\s+(?:was|is)\s+the\s+director\s+of\s+{_THE_NOUN}{_E}"),
    ("author", rf"who\s+(?:wrote|authored)\s+{_THE_NOUN}{_E}"),
    ("author", rf"who\s+(?:was|is)\s+the\s+(?:author|writer)\s+of\s+{_THE_NOUN}{_E}"),
    ("capital", rf"what\s+(?:is|was)\s+the\s+capital(?:\s+city)?\s+of\s+{_E}"),
    ("country", rf"(?:which|what)\s+country\s+(?:is|was)\s+{_E}\s+the\s+capital(?:\s+city)?\s+of"),
    ("country", rf"(?:of\s+)?(?:which|what)\s+country\s+(?:is|was)\s+{_E}\s+the\s+capital"),
    ("nationality", rf"what\s+(?:is|was)\s+the\s+nationality\s+of\s+{_E}"),
    ("nationality", rf"what\s+nationality\s+(?:is|was)\s+{_E}"),
]
COMPARE = re.compile(  # "Which film came out first: A or B?" / "Who was born first, A or B?"
    rf"(?:which|what|who)\s+(?:(?P<noun>{NOUNS})\s+)?(?:(?P<verb>came\s+out|came|was\s+released|"
    r"was\s+published|was\s+written|was\s+made|appeared|premiered|was\s+born|was\s+founded)\s+)?"
    r"(?P<pick>first|earlier|sooner|last|later)\s*[:,]?\s*(?P<a>[^?]+?)\s+or\s+(?P<b>[^?]+?)",
    re.IGNORECASE,
)
CHAIN = re.compile(  # "the director of the film Psycho" inside a question (the entity follows);
    # lower case only, so a title such as "The Director of Nothing" is not read as a chain
    rf"\bthe\s+(?P<role>director|author|writer)\s+of\s+{_THE_NOUN}"
)
ROLE = {"director": "director", "author": "author", "writer": "author"}
EARLY = {"first", "earlier", "sooner"}


@dataclass(frozen=True)
class Ask:
    """One lookup: ``relation`` of ``entity`` (a ``noun``, or "" if the question does not say),
    written out as ``question``; ``answer_type`` is the kind of span that answers it; ``cloze``
    is the answer sentence up to the answer ("Jaws was released in"), for the model to finish."""

    question: str
    relation: str
    entity: str
    noun: str
    answer_type: str
    cloze: str


@dataclass(frozen=True)
class Form:
    """What a question asks: ``kind`` "lookup" (one ask), "compare" (two asks, then ``pick``
    "first" or "last" by year) or "chain" (``asks[0]``'s answer goes into ``then``, a question
    with ``{}`` where the answer goes, parsed again once it is known)."""

    kind: str
    asks: tuple[Ask, ...]
    pick: str = ""
    then: str = ""


def _clean(entity: str) -> str:
    return entity.strip().strip("\"'“”‘’ ").rstrip(".,:;")


def ask_for(relation: str, entity: str, noun: str = "") -> Ask:
    """The lookup ``relation`` of ``entity``, written as a question the model reads.

    ``ask_for("year", "Jaws", "film").question -> "In what year was the film Jaws released?"``.
    """
    noun = SAME_NOUN.get(noun.lower(), noun.lower()) if noun else ""
    the = f"the {noun} " if noun else ""
    verb = "published" if noun in ("novel", "poem", "play") else "released"
    text = {
        "year": f"In what year was {the}{entity} {verb}?",
        "born": f"In what year was {entity} born?",
        "director": f"Who directed {the}{entity}?",
        "author": f"Who wrote {the}{entity}?",
        "capital": f"What is the capital of {entity}?",
        "country": f"Which country is {entity} the capital of?",
        "nationality": f"What nationality was {entity}?",
    }[relation]
    cloze = {
        "year": f"{entity} was {verb} in",
        "born": f"{entity} was born in",
        "director": f"{entity} was directed by",
        "author": f"{entity} was written by",
        "capital": f"The capital of {entity} is",
        "country": f"{entity} is the capital of",
        "nationality": f"{entity} was",  # ... "an English" (facts.continuation adds a/an)
    }[relation]
    return Ask(
        question=text,
        relation=relation,
        entity=entity,
        noun=noun,
        answer_type=ANSWER_TYPE[relation],
        cloze=cloze,
    )


def _lookup(question: str) -> Ask | None:
    q = " ".join(question.split()).rstrip("?").strip()
    for relation, pattern in LOOKUPS:
        m = re.fullmatch(pattern, q, flags=re.IGNORECASE)
        if m and _clean(m.group("entity")):
            noun = m.groupdict().get("noun") or ""
            return ask_for(relation, _clean(m.group("entity")), noun)
    return None


def parse_question(question: str) -> Form | None:
    """The form of ``question``, or None if no rule reads it (see the module docstring).

    ``parse_question("Who wrote the novel Dracula?")`` ->
    ``Form(kind="lookup", asks=(Ask(question="Who wrote the novel Dracula?", relation="author",
    entity="Dracula", noun="novel", answer_type="person"),))``.
    """
    if not isinstance(question, str) or not question.strip():
        raise ValueError("The question is empty: ask something the documents can answer.")
    q = " ".join(question.split())
    m = COMPARE.fullmatch(q.rstrip("?").strip())
    if m:
        relation = "born" if "born" in (m.group("verb") or "").lower() else "year"
        noun = m.group("noun") or ""
        a, b = _clean(m.group("a")), _clean(m.group("b"))
        if a and b and a.lower() != b.lower():
            pick = "first" if m.group("pick").lower() in EARLY else "last"
            return Form(
                kind="compare",
                asks=(ask_for(relation, a, noun), ask_for(relation, b, noun)),
                pick=pick,
            )
    chain = _chain(q)
    if chain:
        return chain
    ask = _lookup(q)
    return Form(kind="lookup", asks=(ask,)) if ask else None


def _chain(q: str) -> Form | None:
    """ "... the director of the film X ...?": the first lookup (who directed X) and the outer
    question with ``{}`` in place of that phrase. X ends where the outer question still reads
    as a lookup of ``{}`` itself (shortest first: "the director of Psycho born" -> "Psycho")."""
    m = CHAIN.search(q)
    if not m:
        return None
    body = q.rstrip("?").rstrip()
    ends = [e.start() for e in re.finditer(r"\s|$", body) if e.start() > m.end()]
    for end in ends:
        entity = _clean(body[m.end() : end])
        then = body[: m.start()] + "{}" + body[end:] + "?"
        outer = _lookup(then.replace("{}", "X"))
        if entity and outer is not None and outer.entity == "X":
            role = ROLE[m.group("role").lower()]
            return Form(
                kind="chain", asks=(ask_for(role, entity, m.group("noun") or ""),), then=then
            )
    return None


def then_ask(form: Form, answer: str) -> Ask | None:
    """A chain's second lookup, once the first answer is known: ``then`` with ``answer`` in it.

    ``then_ask(parse_question("What nationality was the director of the film Psycho?"),
    "Alfred Hitchcock").question -> "What nationality was Alfred Hitchcock?"``.
    """
    if form.kind != "chain" or not answer.strip():
        return None
    return _lookup(form.then.replace("{}", answer.strip()))
