"""Tests for ``llmlab research``: bad input (one line, exit 2), end to end in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from llmlab.cli import COMMANDS
from llmlab.cli import research as research_cli


@pytest.fixture
def docs(tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "Jaws_film.txt").write_text(
        "Jaws (film)\n\nJaws is a 1975 American thriller film directed by Steven Spielberg, based "
        "on the 1974 novel by Peter Benchley.\n"
    )
    (root / "Accra.txt").write_text("Accra\n\nAccra is the capital and largest city of Ghana.\n")
    (root / "Dracula.txt").write_text(
        "Dracula\n\nDracula is an 1897 Gothic horror novel by Irish author Bram Stoker.\n"
    )
    return root


def test_registered():
    assert COMMANDS["research"][0] == "llmlab.cli.research"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{missing}", "q"], "does not exist"),
        (["{empty}", "q"], "Nothing to index"),
        (["{docs}", "   "], "The question is empty"),
        (["{docs}", "q", "--max-steps", "0"], "--max-steps must be more than 0"),
        (["{docs}", "q", "--max-tokens", "-5"], "--max-tokens must be more than 0"),
        (["{docs}", "q", "--max-seconds", "0"], "--max-seconds must be more than 0"),
        (["{docs}", "q", "--mode", "magic"], "--mode must be one of"),
        (["{docs}", "q", "--max-steps", "two"], "invalid int value"),
    ],
)
def test_bad_input_is_one_line_exit_2(docs, tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.pdf").write_bytes(b"%PDF")
    paths = {"missing": tmp_path / "nope", "empty": tmp_path / "empty", "docs": docs}
    code = research_cli.cli([a.format(**paths) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("llmlab research: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def _env(tmp_path):
    src = os.path.dirname(os.path.dirname(research_cli.__file__))  # .../shared/llmlab
    return {
        **os.environ,
        "LLMLAB_DOCS_CACHE": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([os.path.dirname(src), os.environ.get("PYTHONPATH", "")]),
    }


@pytest.mark.slow
def test_research_end_to_end_in_a_subprocess(docs, tmp_path):
    trace = tmp_path / "trace.jsonl"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmlab",
            "research",
            str(docs),
            "In what year was the film Jaws released?",
            "--json",
            "--trace",
            str(trace),
            "--max-steps",
            "6",
            "--mode",
            "rag",
        ],  # one model call
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)  # stdout is exactly one JSON object
    assert set(result) == {"answer", "citations", "steps", "tokens", "seconds", "stop_reason"}
    assert isinstance(result["answer"], str) and result["answer"]
    assert isinstance(result["tokens"], int) and result["tokens"] > 0
    assert isinstance(result["seconds"], float) and result["stop_reason"] == "answer"
    assert result["citations"] and all(
        set(c) == {"source", "text", "verified"} for c in result["citations"]
    )
    assert {c["source"] for c in result["citations"]} <= {p.name for p in docs.iterdir()}
    assert all(set(s) == {"tool", "arguments", "result"} for s in result["steps"])
    assert "search" in [s["tool"] for s in result["steps"]]
    steps = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [s["tool"] or s["kind"] for s in steps] == [s["tool"] for s in result["steps"]]
    assert len(steps) <= 6
