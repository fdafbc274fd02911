"""Facts copied from a document: find the article about a thing, then let the model copy one span.

A 135M model copies well and reasons badly. So for one lookup (``llmlab.research.forms.Ask``:
"In what year was the film Jaws released?") code does everything except the one choice the
model is good at:

1. **Find the article** (``find_articles``): by title first -- "Jaws" with the noun "film" picks
   ``Jaws (film)`` and never ``Jaw`` (the anatomy article that a search for "Jaws" ranks first;
   ``Corpus.titles`` reads each file's title). With no title match, the search hits that name
   the thing compete, and only their sentences that name it are read.
2. **List what may be copied** (``options``): the spans of the article's opening sentences
   (``opening``) that have the answer's type -- every year for a year, every capitalised name
   for a person or a place, every nationality word for a nationality.
3. **The model chooses among those spans** (``choose``): it reads the opening, then the answer
   sentence up to the answer ("Jaws was released in", ``Ask.cloze``), and each listed span is
   scored whole as its continuation (log-probability, all lookups in one batch:
   ``llmlab.evaluation.loglikelihood.batch_choice_logprobs``). That is constrained decoding over
   a handful of strings, done exactly instead of greedily token by token (``span_grammar`` +
   ``llmlab.decoding.constraints`` is the greedy version; research-agent.ipynb compares them),
   and it asks the model to finish a sentence -- what a language model does best -- instead of
   answering a question. Whatever it picks is text of the document. Through a server (no
   scores there) its free answer counts only if it is one of the spans.
4. **Cite where the span is** (``Fact.passage``): the sentence holding it, with its file and
   line numbers (``Jaws_film.txt:3``).

``look_up(chat, corpus, asks)`` does the four for many lookups at once. Comparing and chaining
facts is code's job too: ``llmlab.research.reasoning``.

Leaves out: facts spread over several sentences, numbers other than years, dates finer than a
year, and answers the type rules do not list (a lower-case answer, a title in quotes): those
questions go to the general pipeline (``llmlab.research.agent``).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmlab.data.documents import Document, Passage
from llmlab.research.corpus import Corpus
from llmlab.research.forms import Ask

OPENING = 2  # sentences of an article's opening the model reads: its defining facts are there
COPY_TOKENS = 12  # the longest answer a server may write: "Gabriel García Márquez" is 8 tokens
SYSTEM = "Answer the question by copying words from the text. Reply with the answer only."
SEARCH_K = 5
MAX_FOUND = 3  # articles that name the entity, read when no title names it
YEAR = re.compile(r"(?<![\d,.])(?:1[0-9]{3}|20[0-9]{2})(?![\d,]|\.\d)")
# A capitalised name: words that start with a capital (initials such as "C." included), joined
# by spaces or by small lower-case links inside names ("Gulf of Guinea", "Max von Sydow").
_WORD = r"(?:[A-Z]\.|[A-Z][\w'’-]*[\w’])|[A-Z]"
NAME = re.compile(
    rf"(?:{_WORD})(?:\s+(?:(?:of|the|de|da|di|del|van|von|bin|al|y|la|le)\s+)*(?:{_WORD}))*"
)
_DEMONYM = (  # a capitalised word with a demonym's ending, or one of the irregular ones
    r"(?:[A-Z][a-z]+(?:an|ian|ese|ish|ic|i|ch)|Soviet|Greek|Thai|Swiss|Dutch|French|Czech|"
    r"Welsh|Irish|British)"
)
NATIONALITY = re.compile(  # after a lower-case word ("was an American filmmaker", "a French
    # Impressionist"; ``options`` checks the word before), hyphenated ones whole ("Japanese-British")
    rf"(?<= ){_DEMONYM}(?:-{_DEMONYM})*\b(?=\s+\w)"
)
FUNCTION_WORDS = frozenset(
    "the a an it its he she his her they their this that these those as in on at by for of to "
    "and or but with from after before during while when where known starring based set".split()
)
SENTENCE_END = re.compile(  # ". " after a word, not after an initial ("F. Scott") or "St."
    r"(?<=[.!?])(?<!\b[A-Z]\.)(?<!\b(?:Mr|Dr|St|Jr|Sr|Ms)\.)(?<!\bMrs\.)\s+|\n\s*\n"
)


@dataclass(frozen=True)
class Fact:
    """One lookup's outcome: the span copied (``value``, "" if none), the document and the
    sentence it came from (``passage``: file, offsets, lines), the spans that were allowed
    (``options``, with the model's ``scores``) and how the value was chosen (``how``: "model",
    "only option", or why there is no value: "no document", "no option", "not a listed span").
    ``titled``: the lines from the article's title to that sentence, when the title is what
    names the entity ("Rod Laver" on line 1, "Rodney George Laver is an Australian ..." on 3)."""

    ask: Ask
    value: str
    source: str
    passage: Passage | None
    options: tuple[str, ...] = ()
    scores: tuple[float, ...] = ()  # the model's log-probability of each option, if it chose
    how: str = ""
    tokens: int = 0
    hits: tuple[str, ...] = field(default=())  # sources the search showed (for "gold seen")
    titled: Passage | None = None  # from the title line to ``passage``, if the title names it
    excerpt: str = ""  # what the model read to choose (the sentences of the chosen article)

    @property
    def where(self) -> str:
        """``Jaws_film.txt:3``: the file and lines of the sentence the value was copied from."""
        return self.passage.where if self.passage else self.source


def fold(text: str) -> str:
    """Lower case, accents and punctuation dropped: ``fold("Bogotá (city)") -> "bogota city"``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(re.findall(r"[a-z0-9]+", ascii_text.lower()))


# --- 1. find the article ------------------------------------------------------------------------


def title_match(title: str, entity: str, noun: str = "") -> float:
    """How well a title names ``entity`` (0: not at all). ``Jaws (film)`` for ("Jaws", "film"):
    2.0; ``Jaws``: 1.0; ``Jaws (novel)``: 0.5; ``Jaw``: 0.0 (a different word)."""
    m = re.fullmatch(r"(.*?)\s*\(([^()]*)\)\s*", title)
    base, qualifier = (m.group(1), m.group(2)) if m else (title, "")
    if fold(base) != fold(entity) or not fold(entity):
        return 0.0
    if not qualifier:
        return 1.0
    return 2.0 if noun and noun in fold(qualifier).split() else 0.5


def find_articles(corpus: Corpus, ask: Ask, k: int = SEARCH_K) -> tuple[list[str], bool, list[Any]]:
    """``(sources, by_title, hits)``: the article(s) ``ask`` may be about, whether a title named
    it, and the search hits that were looked at.

    By title first: the one best ``title_match`` (ties go to the better search rank). Else up to
    ``MAX_FOUND`` search hits for the question that name the entity ("What is the capital of
    Turkey?" -> the leads of Ankara and Antalya both name Turkey: the model's choice decides).
    Empty if no document names it.
    """
    query = f"{ask.entity} {ask.noun}".strip()
    hits = corpus.search(query, k=k)
    rank = {h.passage.source: i for i, h in reversed(list(enumerate(hits)))}
    scored = [
        (title_match(t, ask.entity, ask.noun), -rank.get(s, k), s)
        for s, t in corpus.titles().items()
    ]
    best = max((x for x in scored if x[0] > 0), default=None)
    if best is not None:
        return [best[2]], True, hits
    more = corpus.search(ask.question, k=k)
    found = [h.passage.source for h in more + hits if names(h.text, ask.entity)]
    return list(dict.fromkeys(found))[:MAX_FOUND], False, hits + more


def names(text: str, entity: str) -> bool:
    """True if ``text`` names ``entity`` (case, accents and punctuation ignored)."""
    want = fold(entity)
    return bool(want) and f" {want} " in f" {fold(text)} "


# --- 2. what may be copied ----------------------------------------------------------------------


def sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``text[start:end]`` (an initial such as "F." or
    "C." does not end one: "F. Scott Fitzgerald" stays whole)."""
    end = len(text) if end is None else end
    cuts = [start] + [m.end() for m in SENTENCE_END.finditer(text, start, end)] + [end]
    out = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        piece = text[a:b]
        if piece.strip():
            a += len(piece) - len(piece.lstrip())
            out.append((a, a + len(piece.strip())))
    return out


def body_start(text: str) -> int:
    """Where the article starts after its title line (0 if the text is one paragraph)."""
    first = text.lstrip().split("\n", 1)
    if len(first) == 1 or len(first[0]) > 100:
        return 0
    m = re.search(r"\n\s*\S", text)
    return m.end() - 1 if m else 0


def options(text: str, answer_type: str, exclude: str = "") -> list[str]:
    """The spans of ``text`` a lookup of ``answer_type`` may copy, in order, each once.

    ``options("Jaws is a 1975 film based on the 1974 novel.", "year") -> ["1975", "1974"]``;
    a person: names of two words or more; a place: any name; never ``exclude`` (the thing asked
    about), a year, or a function word that only starts the sentence ("The", "It").
    """
    if answer_type == "year":
        return list(dict.fromkeys(YEAR.findall(text)))
    skip = {w for w in fold(exclude).split() if len(w) >= 4}  # words of the thing asked about

    def new(option: str) -> bool:  # not (part of) the thing asked about, and not a year
        return (
            bool(fold(option))
            and not skip & set(fold(option).split())
            and not YEAR.fullmatch(option)
        )

    if answer_type == "nationality":  # not part of a name: the word before is lower case
        found = [
            m.group()
            for m in NATIONALITY.finditer(text)
            if re.search(r"(?:^|\s)[a-z0-9][\w-]*,?\s+$", text[: m.start()]) and new(m.group())
        ]
        return list(dict.fromkeys(found))
    found = []
    for m in NAME.finditer(text):
        words = m.group().split()
        while words and (words[0].lower() in FUNCTION_WORDS or not words[0][0].isupper()):
            words = words[1:]  # "The Whale" -> "Whale", "It" -> nothing
        if words:
            found.append(" ".join(words))
    if answer_type == "person":  # a person has a first and a last name
        found = [f for f in found if len(f.split()) >= 2] or found
    return list(dict.fromkeys(f for f in found if new(f)))


def opening(
    text: str, entity: str = "", n: int = OPENING, keep: Callable[[str], bool] | None = None
) -> list[tuple[int, int]]:
    """``(start, end)`` of the sentences the model reads: the first ``n`` after the title; with
    ``entity`` (an article found by search, which may be about something else), only the first
    sentence that names it -- what the article says about the entity, nothing more. Sentences
    ``keep`` refuses are skipped. Empty if no sentence qualifies."""
    spans = sentences(text, body_start(text))
    if keep is not None:
        spans = [(a, b) for a, b in spans if keep(text[a:b])]
    if entity:
        return [(a, b) for a, b in spans if names(text[a:b], entity)][:1]
    return spans[:n]


def continuation(ask: Ask, option: str) -> str:
    """What the model writes after ``ask.cloze`` to give ``option``: the option itself, or for a
    nationality "an English" / "a Swedish" ("Alfred Hitchcock was an English ...")."""
    if ask.answer_type == "nationality":
        return ("an " if option[:1] in "AEIOU" else "a ") + option
    return option


def cloze_prompt(ask: Ask, excerpt: str) -> str:
    """What the model reads for one lookup: the excerpt, a blank line, the answer sentence up to
    the answer. ``cloze_prompt(ask, "Jaws is a 1975 film.") -> "Jaws is a 1975 film.\\n\\nJaws was
    released in "``: the model is not asked a question; it finishes a sentence the text supports."""
    return f"{' '.join(excerpt.split())}\n\n{ask.cloze} "


def copy_messages(ask: Ask, excerpt: str) -> list[dict]:
    """The same lookup asked as a chat question (how a server is asked; the greedy constrained
    baseline of research-agent.ipynb reads it too): an instruction, the excerpt, the question."""
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Text: {excerpt}\n\nQuestion: {ask.question}"},
    ]


# --- 3. the model chooses -----------------------------------------------------------------------


def span_grammar(spans: Sequence[str]) -> str:
    """A Lark grammar whose language is exactly ``spans``: ``start: "1975" | "1974"``."""
    return "start: " + " | ".join(json.dumps(s, ensure_ascii=False) for s in spans) + "\n"


def snap(text: str, spans: Sequence[str]) -> str:
    """The listed span a free answer gives (the first one it contains, longest first), or ""."""
    have = f" {fold(text)} "
    for s in sorted(spans, key=lambda s: (-len(s), spans.index(s))):
        if f" {fold(s)} " in have:
            return s
    return ""


def choose(
    chat: Any,
    asks: Sequence[Ask],
    excerpts: Sequence[str],
    spans: Sequence[Sequence[str]],
    score_all: bool | Sequence[bool] = False,
) -> list[tuple[str, tuple[float, ...], int, str]]:
    """For each lookup, the span the model picks from its list: ``(span, scores, tokens, how)``.

    With the bundled model (``chat.lm``) every span is scored whole: log P(span | the excerpt and
    the answer sentence so far) (``llmlab.evaluation.loglikelihood.batch_choice_logprobs``, all
    lookups in one batch), and the most likely one is copied -- constrained decoding over a
    handful of spans, done exactly rather than greedily token by token. With any other backend
    the model answers the question freely and the answer counts only if it is a listed span.
    A list of one span needs no model call ("only option") unless ``score_all`` (for all rows,
    or one flag per row: when spans of several documents compete, each needs its score).
    """
    force = [score_all] * len(asks) if isinstance(score_all, bool) else list(score_all)
    out: list[tuple[str, tuple[float, ...], int, str]] = [("", (), 0, "no option")] * len(asks)
    todo = [i for i, s in enumerate(spans) if len(s) > 1 or (s and force[i])]
    for i, s in enumerate(spans):
        if len(s) == 1 and not force[i]:
            out[i] = (s[0], (), 0, "only option")
    if not todo:
        return out
    lm = getattr(chat, "lm", None)
    if lm is not None:
        from llmlab.evaluation.loglikelihood import batch_choice_logprobs

        requests = [
            (cloze_prompt(asks[i], excerpts[i]), [continuation(asks[i], o) for o in spans[i]])
            for i in todo
        ]
        scored = batch_choice_logprobs(lm, requests)
        for i, (context, _), logps, lengths in zip(
            todo, requests, scored.logprobs, scored.lengths, strict=True
        ):
            best = max(range(len(logps)), key=lambda j: logps[j])
            tokens = len(lm.tokenizer.encode(context, add_special_tokens=False)) + sum(lengths)
            out[i] = (spans[i][best], tuple(logps), tokens, "model")
        return out
    chats = [copy_messages(asks[i], excerpts[i]) for i in todo]
    results = chat.complete_batch(chats, max_tokens=COPY_TOKENS, stop=["\n"])
    for i, r in zip(todo, results, strict=True):
        value = snap(r.text, spans[i])
        out[i] = (value, (), r.usage.total_tokens, "model" if value else "not a listed span")
    return out


# --- all four, for many lookups -----------------------------------------------------------------


def locate(doc: Document, value: str, spans: Sequence[tuple[int, int]]) -> Passage | None:
    """The Passage of the first sentence of ``spans`` holding ``value`` (None if none does)."""
    for a, b in spans:
        if doc.text.find(value, a, b) >= 0:
            return doc.passage(a, b)
    return None


@dataclass(frozen=True)
class Candidate:
    """One article a lookup may copy from: the document, the sentences read (``read``: their
    offsets), those sentences as one text (``excerpt``, what the model reads) and the spans of
    the answer's type in it (``spans``)."""

    doc: Document
    read: tuple[tuple[int, int], ...]
    excerpt: str
    spans: tuple[str, ...]


@dataclass(frozen=True)
class Reading:
    """What one lookup found before the model is asked: the candidate articles (one when a
    title named the thing), whether a title did, and the search hits it looked at."""

    ask: Ask
    candidates: tuple[Candidate, ...]
    by_title: bool
    hits: tuple[Any, ...]  # llmlab.search.semantic_index.Hit

    @property
    def seen(self) -> tuple[str, ...]:
        """The sources the search showed, best first, each once."""
        return tuple(dict.fromkeys(h.passage.source for h in self.hits))


def read_for(
    corpus: Corpus, ask: Ask, k: int = SEARCH_K, keep: Callable[[str], bool] | None = None
) -> Reading:
    """Steps 1-2 for one lookup: its article(s), the sentences read, the spans to choose from.
    ``keep(sentence)`` may refuse a sentence (e.g. one that reads like an order to the model)."""
    sources, by_title, hits = find_articles(corpus, ask, k=k)
    candidates = []
    for source in sources:
        doc = Document(path=source, text=corpus.read(source, max_chars=10**6))
        read = [(a, b) for a, b in opening(doc.text, "" if by_title else ask.entity, keep=keep)]
        excerpt = " ".join(doc.text[a:b] for a, b in read)
        spans = options(excerpt, ask.answer_type, exclude=ask.entity)
        candidates.append(Candidate(doc=doc, read=tuple(read), excerpt=excerpt, spans=tuple(spans)))
    return Reading(
        ask=ask,
        candidates=tuple(candidates),
        by_title=by_title,
        hits=tuple(hits),
    )


def decide(chat: Any, readings: Sequence[Reading]) -> list[Fact]:
    """Steps 3-4 for many lookups at once (one model batch): the span each copies, and where.

    Where no title named the entity, the spans of every candidate compete and the one the
    model scores highest wins."""
    rows = [(i, c) for i, r in enumerate(readings) for c in r.candidates]
    picks = choose(
        chat,
        [readings[i].ask for i, _ in rows],
        [c.excerpt for _, c in rows],
        [list(c.spans) for _, c in rows],
        score_all=[not readings[i].by_title for i, _ in rows],
    )
    out = []
    for i, reading in enumerate(readings):
        mine = [(c, p) for (j, c), p in zip(rows, picks, strict=True) if j == i]
        tokens = sum(p[2] for _, p in mine)
        chosen = [(c, p) for c, p in mine if p[0]]
        if not chosen:
            c = mine[0][0] if mine else None
            out.append(
                Fact(
                    ask=reading.ask,
                    value="",
                    source=c.doc.path if c else "",
                    passage=c.doc.passage(c.read[0][0], c.read[-1][1]) if c and c.read else None,
                    options=c.spans if c else (),
                    how=mine[0][1][3] if mine else "no document",
                    tokens=tokens,
                    hits=reading.seen,
                    excerpt=c.excerpt if c else "",
                )
            )
            continue
        c, (value, scores, _, how) = max(chosen, key=lambda cp: max(cp[1][1], default=0.0))
        passage = locate(c.doc, value, c.read)
        head = c.doc.text.split("\n", 1)[0]
        titled = None
        if reading.by_title and passage is not None and names(head, reading.ask.entity):
            titled = c.doc.passage(len(c.doc.text) - len(c.doc.text.lstrip()), passage.end)
        out.append(
            Fact(
                ask=reading.ask,
                value=value,
                source=c.doc.path,
                passage=passage,
                options=c.spans,
                scores=scores,
                how=how,
                tokens=tokens,
                hits=reading.seen,
                titled=titled,
                excerpt=c.excerpt,
            )
        )
    return out


def look_up(chat: Any, corpus: Corpus, asks: Sequence[Ask], k: int = SEARCH_K) -> list[Fact]:
    """Each lookup of ``asks`` answered by a span copied from its article (one model batch)."""
    return decide(chat, [read_for(corpus, ask, k=k) for ask in asks])
