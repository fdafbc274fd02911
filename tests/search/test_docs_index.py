"""Tests for llmlab.search.docs_index: incremental re-indexing, rebuilds and why, hybrid search."""

from __future__ import annotations

import os

import numpy as np
import pytest

from llmlab.search.chunking import Chunker
from llmlab.search.docs_index import index_path, open_index
from tests.doubles import HashEmbedder


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_DOCS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def docs(tmp_path):
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "a.md").write_text("# Alpha\n\nAlpha is the first letter of the Greek alphabet.\n")
    (root / "sub" / "b.txt").write_text("Bananas are yellow fruit that grow in bunches.\n")
    (root / "c.py").write_text(
        'def cherry():\n    """Return the word cherry."""\n    return "cherry"\n'
    )
    return root


def snapshot(folder):
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_first_index_then_nothing_to_do(docs, cache):
    before = snapshot(docs)
    emb = HashEmbedder("fake-a")
    index, report = open_index(docs, embedder=emb)
    assert report.rebuilt == "there was no index yet"
    assert (report.n_files, len(report.added), report.embedded) == (3, 3, len(index))
    assert index.location.is_file() and cache in index.location.parents
    assert snapshot(docs) == before  # nothing written in the user's folder
    emb.calls.clear()
    index2, report2 = open_index(docs, embedder=emb)
    assert report2.rebuilt is None and report2.unchanged == 3 and emb.seen == []
    assert [c.text for c in index2.passages] == [c.text for c in index.passages]
    np.testing.assert_array_equal(index2.vectors, index.vectors)


def test_incremental_add_modify_delete(docs):
    emb = HashEmbedder("fake-a")
    index, _ = open_index(docs, embedder=emb)
    old = {c.source: v for c, v in zip(index.passages, index.vectors, strict=True)}
    (docs / "new.rst").write_text("Dates are sweet.\n")
    (docs / "sub" / "b.txt").write_text("Bananas are long and yellow.\n")
    os.utime(docs / "sub" / "b.txt", ns=(1, 1))  # a different mtime even on a coarse clock
    (docs / "a.md").unlink()
    emb.calls.clear()
    report = index.update()
    assert report.added == ["new.rst"] and report.changed == ["sub/b.txt"]
    assert report.removed == ["a.md"] and report.unchanged == 1
    assert emb.seen == ["Dates are sweet.", "Bananas are long and yellow."]  # only those embedded
    sources = [c.source for c in index.passages]
    assert sources == ["c.py", "new.rst", "sub/b.txt"]
    np.testing.assert_array_equal(index.vectors[0], old["c.py"])  # kept, not recomputed
    np.testing.assert_allclose(
        index.vectors, emb.encode([c.text for c in index.passages]), atol=1e-6
    )
    assert open_index(docs, embedder=emb)[1].unchanged == 3  # the update was saved


def test_touched_but_same_bytes_is_not_reembedded(docs):
    emb = HashEmbedder("fake-a")
    index, _ = open_index(docs, embedder=emb)
    os.utime(docs / "a.md", ns=(5, 5))
    emb.calls.clear()
    assert index.update().unchanged == 3 and emb.seen == []


def test_other_embedding_model_or_chunker_rebuilds_and_says_why(docs):
    open_index(docs, embedder=HashEmbedder("fake-a"))
    _, report = open_index(docs, embedder=HashEmbedder("fake-b"))
    assert "'fake-a'" in report.rebuilt and "'fake-b'" in report.rebuilt
    assert report.embedded == report.n_chunks and "Rebuilt the index" in report.summary()
    _, report = open_index(docs, embedder=HashEmbedder("fake-b"), chunker=Chunker(size=64))
    assert "size=128" in report.rebuilt and "size=64" in report.rebuilt


def test_damaged_index_is_rebuilt(docs):
    index, _ = open_index(docs, embedder=HashEmbedder("fake-a"))
    index.location.write_bytes(b"garbage")
    _, report = open_index(docs, embedder=HashEmbedder("fake-a"))
    assert "could not be read" in report.rebuilt


def test_passages_carry_exact_spans_and_lines(docs):
    index, _ = open_index(docs, embedder=HashEmbedder("fake-a"))
    for p in index.passages:
        text = (docs / p.source).read_text()
        lines = text.split("\n")
        assert text[p.start : p.end] == p.text
        assert p.text.split("\n")[0] in lines[p.first_line - 1]
        assert p.text.split("\n")[-1] in lines[p.last_line - 1]
        assert p.where == f"{p.source}:{p.first_line}" + (
            f"-{p.last_line}" if p.last_line > p.first_line else ""
        )


def test_binary_and_empty_files_are_skipped_and_reported(docs):
    (docs / "blob.md").write_bytes(b"\x00\x01\x02binary")
    (docs / "empty.txt").write_text("   \n")
    index, report = open_index(docs, embedder=HashEmbedder("fake-a"))
    assert [(s.path, s.reason) for s in report.skipped] == [("blob.md", "binary (NUL bytes)")]
    assert "Skipped 1 files: blob.md (binary (NUL bytes))" in report.summary()
    assert "empty.txt" not in {c.source for c in index.passages}


def test_bad_folders(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        open_index(tmp_path / "nope", embedder=HashEmbedder("fake-a"))
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "x.bin").write_bytes(b"\x00")
    with pytest.raises(ValueError, match="Nothing to index"):
        open_index(tmp_path / "only", embedder=HashEmbedder("fake-a"))
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "x.md").write_bytes(b"\x00")
    with pytest.raises(ValueError, match="no readable text"):
        open_index(tmp_path / "bin", embedder=HashEmbedder("fake-a"))


def test_index_path_depends_on_folder_only(tmp_path, cache):
    assert index_path(tmp_path / "a") != index_path(tmp_path / "b")
    assert index_path(tmp_path / "a").parent.parent == cache


def test_hybrid_search_with_the_real_embedder(docs, embedder):
    index, _ = open_index(docs, embedder=embedder)
    hits = index.search("which fruit is yellow?", k=2)
    assert hits[0].passage.source == "sub/b.txt" and hits[0].text == hits[0].passage.text
    assert hits[0].bm25 is not None  # "yellow" is in it: both halves of the fusion found it
    assert hits[0].cosine is not None and hits[0].cosine == pytest.approx(
        index.max_cosine("which fruit is yellow?")
    )
    assert len(index.search("alphabet", k=10)) == len(index)  # k larger than the index: all of it
    assert index.max_cosine("Greek alphabet letters") > index.max_cosine("tax law in Peru")


def test_batched_search_is_the_one_query_path_with_the_same_recall(tmp_path, embedder):
    """``search_many`` / ``max_cosine_many`` (one embedding call) give exactly the hits and
    confidences of the per-question path chat-with-your-docs.ipynb used before, so its recall@5 per
    retriever is unchanged. Three Python FAQ pages and their 16 questions, with the real embedder."""
    from llmlab.data.datasets import load_faq_pages, load_python_faq
    from llmlab.search.retrievers import rrf

    pages = {"faq/windows.rst.txt", "faq/gui.rst.txt", "faq/installed.rst.txt"}
    root = tmp_path / "faq"
    for page in load_faq_pages():
        if page.path in pages:
            (root / page.path).parent.mkdir(parents=True, exist_ok=True)
            (root / page.path).write_text(page.text, encoding="utf-8")
    index, _ = open_index(root, embedder=embedder)
    faq = [f for f in load_python_faq() if f.doc_path in pages]
    questions = [f.question for f in faq]
    bm25, dense = index.retrievers()

    old: dict[str, list] = {"bm25": [], "dense": [], "hybrid": [], "best": []}
    for q in questions:  # the old path: one embedding call per question, ids found in the list
        d, b = dense.search(q, 50), bm25.search(q, 50)
        fused = rrf([[h.id for h in b], [h.id for h in d]])[:5]
        old["hybrid"].append([index.passages.index(index.passages[i]) for i, _ in fused])
        old["bm25"].append([h.id for h in b[:5]])
        old["dense"].append([h.id for h in d[:5]])
        old["best"].append(d[0].score)  # max_cosine
    runs, best = index.retrieve_many(questions, 5)
    new = {
        "bm25": [[h.id for h in hs] for hs in bm25.search_many(questions, 5)],
        "dense": [[h.id for h in hs] for hs in dense.search_many(questions, 5)],
        "hybrid": [[h.id for h in hs] for hs in runs],
    }

    def recall(run):
        return np.mean(
            [
                any(
                    index.passages[i].source == f.doc_path
                    and index.passages[i].start < f.end
                    and f.start < index.passages[i].end
                    for i in ids
                )
                for ids, f in zip(run, faq, strict=True)
            ]
        )

    assert len(questions) == 16 and all(new[name] == old[name] for name in new)
    assert [recall(new[name]) for name in new] == [recall(old[name]) for name in new]
    assert recall(new["hybrid"]) > 0.5  # a real retrieval task, not an empty comparison
    assert [[h.id for h in hs] for hs in index.search_many(questions, 5)] == new["hybrid"]
    assert all(index.passages[h.id] == h.passage for hs in runs for h in hs)  # ids are rows
    assert best == pytest.approx(old["best"], abs=1e-6)
    assert index.max_cosine_many(questions) == pytest.approx(old["best"], abs=1e-6)
    with pytest.raises(TypeError, match="list of queries"):
        index.search_many("one string", 5)
