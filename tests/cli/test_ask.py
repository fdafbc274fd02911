"""Tests for ``llmlab ask`` / ``llmlab chat``: bad input, the --json schema, end to end (``ask`` in a
subprocess, ``chat`` in this process with the session's models)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from llmlab.cli import ask, chat


@pytest.fixture
def docs(tmp_path):
    root = tmp_path / "docs"
    (root / "guide").mkdir(parents=True)
    (root / "guide" / "venv.md").write_text(
        "# Virtual environments\n\nCreate one with `python -m venv .venv`.\n\n"
        "To leave a virtual environment, run `deactivate`. To remove it, delete the .venv folder.\n"
    )
    (root / "copy.py").write_text(
        '"""Copy files."""\nimport shutil\n\nshutil.copy("a.txt", "b.txt")\n'
    )
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00")  # not a docs type: not read
    (root / "scan.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00")  # a docs name, binary inside
    return root


def snapshot(folder):
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()} | {
        "listing": sorted(str(p) for p in folder.rglob("*"))
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{missing}", "q"], "does not exist"),
        (["{file}", "q"], "is not a folder"),
        (["{empty}", "q"], "Nothing to index"),
        (["{docs}", "   "], "The question is empty"),
        (["{docs}", "q", "-k", "0"], "-k (passages to retrieve) must be 1 or more"),
        (["{docs}", "q", "--max-tokens", "0"], "--max-tokens must be 1 or more"),
        (["{docs}", "q", "-k", "two"], "invalid int value"),
    ],
)
def test_bad_input_is_one_line_exit_2(docs, tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.pdf").write_bytes(b"%PDF")
    paths = {
        "missing": tmp_path / "nope",
        "file": docs / "copy.py",
        "empty": tmp_path / "empty",
        "docs": docs,
    }
    code = ask.cli([a.format(**paths) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("llmlab ask: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_chat_bad_folder(tmp_path, capsys):
    assert chat.cli([str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.startswith("llmlab chat: ")


def _env(tmp_path):
    src = os.path.dirname(os.path.dirname(ask.__file__))  # .../shared/llmlab
    return {
        **os.environ,
        "LLMLAB_DOCS_CACHE": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([os.path.dirname(src), os.environ.get("PYTHONPATH", "")]),
    }


@pytest.mark.slow
def test_ask_end_to_end_in_a_subprocess(docs, tmp_path):
    before = snapshot(docs)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmlab.cli.ask",
            str(docs),
            "How do I leave a virtual environment?",
            "--json",
            "-k",
            "2",
            "--max-tokens",
            "12",
            "--show-prompt",
        ],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)  # stdout is exactly one JSON object
    assert set(result) >= {"answer", "citations", "hits", "abstained", "timings", "prompt"}
    assert result["abstained"] is False and isinstance(result["answer"], str) and result["answer"]
    assert result["hits"][0]["source"] == "guide/venv.md" and len(result["hits"]) == 2
    assert all(set(h) >= {"source", "score"} for h in result["hits"])
    for c in result["citations"]:
        assert set(c) == {"n", "source", "start_line", "end_line", "text"}
        assert 1 <= c["n"] <= 2 and c["source"] == result["hits"][c["n"] - 1]["source"]
        lines = (docs / c["source"]).read_text().split("\n")[c["start_line"] - 1 : c["end_line"]]
        assert c["text"].split("\n")[0] in lines[0]
    assert "deactivate" in result["prompt"] and result["timings"]["total_s"] > 0
    assert "Skipped 1 files: scan.md (binary (NUL bytes))" in out.stderr
    assert "2 files" in out.stderr and snapshot(docs) == before  # nothing written in the folder


def test_chat_follow_up(docs, tmp_path, monkeypatch, capfd, embedder, lm):
    """``llmlab chat`` in this process with the session's models (the subprocess path of the same
    options is proved by ``llmlab ask`` above): stdin lines in, one JSON line per answer out."""
    import io

    from transformers.utils import logging as hf_logging

    from llmlab.chat.local import LocalChat

    monkeypatch.setenv("LLMLAB_DOCS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("llmlab.search.embeddings.default_embedder", lambda: embedder)
    monkeypatch.setattr("llmlab.chat.local.load_chat", lambda: LocalChat(lm))
    monkeypatch.setattr(
        sys,
        "stdin",
        io.StringIO("How do I create a virtual environment?\nand how do I remove it?\n\n"),
    )
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    try:
        assert chat.cli([str(docs), "--json", "-k", "1", "--max-tokens", "8"]) == 0
    finally:  # open_docchat quiets transformers for a terminal: give the other tests it back
        hf_logging.set_verbosity(verbosity)
        (hf_logging.enable_progress_bar if bars else hf_logging.disable_progress_bar)()
    out = capfd.readouterr().out  # file-descriptor level: nothing else reached stdout
    turns = [json.loads(line) for line in out.splitlines()]
    assert len(turns) == 2
    assert turns[1]["query"] == "and how do I remove it? (How do I create a virtual environment?)"
    assert turns[1]["hits"][0]["source"] == "guide/venv.md"
