"""Tests for llmlab.search.folder_index and the ``llmlab search`` command: cache, warnings, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from llmlab.cli.search import cli
from llmlab.search.folder_index import folder_cache_path, format_hit, index_folder
from llmlab.search.semantic_index import Hit
from tests.data.test_paragraphs import make_notes  # the same small folder of notes
from tests.doubles import WordEmbedder


@pytest.fixture
def notes(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path / "cache"))
    return make_notes(tmp_path / "notes")


def test_cache_is_reused_until_a_file_changes(notes, tmp_path):
    fake = WordEmbedder()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the normal rebuild reasons are silent
        index, rebuilt = index_folder(notes, fake)
        assert rebuilt and len(index) == 4
        assert folder_cache_path(notes).is_relative_to(tmp_path / "cache" / "indexes")
        again, rebuilt = index_folder(notes, fake)
        assert not rebuilt and again.ids == index.ids
        np.testing.assert_array_equal(again.vectors, index.vectors)
        time.sleep(0.01)
        (notes / "garden.md").write_text("Bees like lavender flowers.\n")
        changed, rebuilt = index_folder(notes, fake)
        assert rebuilt and len(changed) == 3 and "lavender" in changed.texts[0]


@pytest.mark.parametrize("damage", ["vectors", "manifest"])
def test_damaged_cache_is_rebuilt_with_a_warning(notes, damage):
    fake = WordEmbedder()
    index, _ = index_folder(notes, fake)
    where = folder_cache_path(notes)
    if damage == "vectors":
        vectors = np.load(where / "vectors.npy")
        np.save(where / "vectors.npy", vectors + 0.5)
    else:
        (where / "manifest.json").write_text("{truncated")
    with pytest.warns(UserWarning, match="cannot be used .*(damaged|not valid JSON).*rebuilding"):
        rebuilt_index, rebuilt = index_folder(notes, fake)
    assert rebuilt and rebuilt_index.ids == index.ids
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert index_folder(notes, fake)[1] is False  # the rebuilt cache is good again


def test_format_hit():
    hit = Hit(id="notes/a.md:3-5", text="line one\n  line   two " + "x" * 200, score=0.71234)
    first, second = format_hit(1, hit, width=30).splitlines()
    assert first == " 1. 0.712  notes/a.md:3-5"
    assert second.startswith("    line one line two x") and len(second) == 4 + 30


def test_cli_builds_reuses_and_rebuilds(notes, monkeypatch, capsys, embedder):
    monkeypatch.setattr("llmlab.search.embeddings.default_embedder", lambda: embedder)
    assert cli([str(notes), "when should I irrigate my vegetables", "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "built index" in out and "4 passages from 2 files" in out
    first = out.splitlines()[2]
    assert "garden.md:1-3" in first and float(first.split()[1]) > 0.3

    assert cli([str(notes), "saving copies of my pictures"]) == 0
    captured = capsys.readouterr()
    assert "cached index" in captured.out and "sub/computers.txt:3" in captured.out.splitlines()[2]
    assert captured.err == ""

    time.sleep(0.01)
    (notes / "garden.md").write_text("Bees like lavender flowers.\n")
    assert cli([str(notes), "insects that pollinate", "-k", "1", "--rebuild"]) == 0
    out = capsys.readouterr().out
    assert "built index" in out and "garden.md:1" in out and "lavender" in out

    (folder_cache_path(notes) / "records.json").write_text("{}")  # damage the cache
    assert cli([str(notes), "insects that pollinate", "-k", "1"]) == 0
    captured = capsys.readouterr()
    assert "built index" in captured.out and "lavender" in captured.out
    (line,) = captured.err.splitlines()  # the reason, in one line
    assert line.startswith("llmlab search: warning: The cached index at") and "damaged" in line


def test_cli_long_query_says_what_was_searched(notes, monkeypatch, capsys, embedder):
    monkeypatch.setattr("llmlab.search.embeddings.default_embedder", lambda: embedder)
    query = "my laptop fan is loud. " * 1500 + "UNREAD ENDING"  # 34,513 characters
    assert cli([str(notes), query, "-k", "1"]) == 0
    captured = capsys.readouterr()
    assert "sub/computers.txt:1" in captured.out
    (line,) = captured.err.splitlines()  # exactly one line
    assert line.startswith("llmlab search: warning: the query is 34,513 characters")
    assert "at most 256 tokens" in line and "UNREAD" not in line
    assert cli([str(notes), "my laptop fan is loud", "-k", "1"]) == 0
    assert capsys.readouterr().err == ""  # a short query: no warning


def run_cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "llmlab", "search", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "does not exist"),
        ("a file", "is not a folder"),
        ("no notes", "has no .md/.txt files"),
        ("empty notes", "the 1 .md/.txt file(s) in"),
        ("blank query", "The query is empty"),
        ("k 0", "-k must be a whole number >= 1, got 0"),
        ("k -2", "-k must be a whole number >= 1, got -2"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capfd, case, message):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path / "c"))
    notes = make_notes(tmp_path / "notes")
    (tmp_path / "pictures").mkdir()
    (tmp_path / "pictures" / "cat.png").write_bytes(b"\x89PNG")
    (tmp_path / "blank").mkdir()
    (tmp_path / "blank" / "todo.md").write_text("  \n\n")
    folder, query, k = {
        "missing": (tmp_path / "missing", "x", "3"),
        "a file": (notes / "garden.md", "x", "3"),
        "no notes": (tmp_path / "pictures", "x", "3"),
        "empty notes": (tmp_path / "blank", "x", "3"),
        "blank query": (notes, "  \t ", "3"),
        "k 0": (notes, "x", "0"),
        "k -2": (notes, "x", "-2"),
    }[case]
    assert cli([str(folder), query, "-k", k]) == 2
    out, err = capfd.readouterr()  # file-descriptor level, as a terminal would show it
    assert out == "" and "Traceback" not in err
    (line,) = err.splitlines()
    assert line.startswith("llmlab search: ") and message in line, line
    assert not (tmp_path / "c").exists()  # rejected before anything was indexed or cached


def test_python_m_llmlab_search_bad_input(tmp_path):
    """The real entry point: a bad folder is one line on stderr, exit 2, nothing on stdout."""
    result = run_cli(
        str(tmp_path / "missing"), "x", env_extra={"LLMLAB_CACHE": str(tmp_path / "c")}
    )
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("llmlab search: ") and "does not exist" in line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: path, query"),
        (["notes", "x", "-k", "three"], "argument -k: invalid int value: 'three'"),
        (["notes", "x", "--colour"], "unrecognized arguments: --colour"),
    ],
)
def test_usage_errors_are_one_line(capsys, argv, message):
    assert cli(argv) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith("llmlab search: ") and message in line and "--help" in line


@pytest.mark.slow
def test_python_m_llmlab_search(tmp_path):
    notes = make_notes(tmp_path / "notes")
    result = run_cli(
        str(notes), "noisy computer", "-k", "1", env_extra={"LLMLAB_CACHE": str(tmp_path / "cache")}
    )
    assert result.returncode == 0, result.stderr
    assert "sub/computers.txt:1" in result.stdout and "laptop fan" in result.stdout
    assert result.stderr == ""  # no progress bars or warnings for a small folder
