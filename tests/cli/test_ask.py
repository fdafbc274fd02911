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
        "# Virtual environments\n\nCreate a virtual environment with `python -m venv .venv`.\n\n"
        "## Leaving\n\n"
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
        (["{docs}", "q", "--mode", "guess"], "invalid choice: 'guess'"),
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


def test_max_tokens_beyond_the_window_is_refused_before_the_model_loads(docs, capsys, lm):
    """The limit comes from the model cache's config and tokenizer; the weights never load."""
    import llmlab.runtime.models as models

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    budget = ask.token_budget("q")
    if budget is None:
        pytest.skip("the bundled model is not cached here (or another model is configured)")
    window, prompt = budget
    assert window == lm.context_length and 10 < prompt < 100
    original, models.load_lm = models.load_lm, no_load
    try:
        code = ask.cli([str(docs), "q", "--mode", "generate", "--max-tokens", "1000000"])
        err = capsys.readouterr().err
        chat_code = chat.cli([str(docs), "--mode", "generate", "--max-tokens", "1000000"])
        chat_err = capsys.readouterr().err
    finally:
        models.load_lm = original
    assert code == 2 and f"--max-tokens at most {window - prompt:,} for this model" in err
    assert "1,000,000" in err and "Traceback" not in err
    assert chat_code == 2 and chat_err.startswith("llmlab chat: --max-tokens at most ")


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
            "--mode",
            "generate",
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
    assert isinstance(result["answer"], str) and result["answer"] and result["mode"] == "generate"
    assert result["hits"][0]["source"] == "guide/venv.md" and len(result["hits"]) == 2
    assert all(set(h) >= {"source", "score"} for h in result["hits"])
    for c in result["citations"]:  # each citation is the exact lines that support its sentence
        assert set(c) == {"n", "source", "start", "end", "first_line", "last_line", "text"}
        text = (docs / c["source"]).read_text()
        assert text[c["start"] : c["end"]] == c["text"]
        lines = text.split("\n")[c["first_line"] - 1 : c["last_line"]]
        assert c["text"].split("\n")[0] in lines[0]
    assert "deactivate" in result["prompt"] and result["timings"]["total_s"] > 0
    assert "Skipped 1 files: scan.md (binary (NUL bytes))" in out.stderr
    assert "2 files" in out.stderr and snapshot(docs) == before  # nothing written in the folder


def quiet_transformers_restored():
    """``open_docchat`` quiets transformers for a terminal: give the other tests it back."""
    from contextlib import contextmanager

    from transformers.utils import logging as hf_logging

    @contextmanager
    def guard():
        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        try:
            yield
        finally:
            hf_logging.set_verbosity(verbosity)
            (hf_logging.enable_progress_bar if bars else hf_logging.disable_progress_bar)()

    return guard()


def test_ask_quotes_the_lines_and_loads_no_language_model(
    docs, tmp_path, monkeypatch, capfd, embedder
):
    import llmlab.runtime.models as models

    def no_load(*args, **kwargs):
        raise AssertionError("the extract mode loaded the language model")

    monkeypatch.setenv("LLMLAB_DOCS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("llmlab.search.embeddings.default_embedder", lambda: embedder)
    monkeypatch.setattr(models, "load_lm", no_load)
    with quiet_transformers_restored():
        assert ask.cli([str(docs), "How do I leave a virtual environment?"]) == 0
        assert ask.cli([str(docs), "What is the capital of Australia?"]) == 0
    out = capfd.readouterr().out
    assert "From guide/venv.md:7 (quoted as written):" in out
    assert "    To leave a virtual environment, run `deactivate`." in out
    assert "I could not find this in your documents." in out and "below the 0.65 needed" in out


def test_chat_follow_up(docs, tmp_path, monkeypatch, capfd, embedder):
    """``llmlab chat`` in this process with the session's embedder: stdin lines in, one JSON
    line per answer out; the follow-up gets new lines, not the first answer again."""
    import io

    monkeypatch.setenv("LLMLAB_DOCS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("llmlab.search.embeddings.default_embedder", lambda: embedder)
    monkeypatch.setattr(
        sys,
        "stdin",
        io.StringIO("How do I create a virtual environment?\nand how do I remove it?\n\n"),
    )
    with quiet_transformers_restored():
        assert chat.cli([str(docs), "--json", "-k", "1"]) == 0
    out = capfd.readouterr().out  # file-descriptor level: nothing else reached stdout
    turns = [json.loads(line) for line in out.splitlines()]
    assert len(turns) == 2
    assert turns[1]["query"] == "and how do I remove it? (How do I create a virtual environment?)"
    assert turns[1]["hits"][0]["source"] == "guide/venv.md"
    assert turns[0]["answer"] != turns[1]["answer"]  # a follow-up is not a repeat
    assert "delete the .venv folder" in turns[1]["answer"]


def test_piped_chat_echoes_each_question(docs, tmp_path, monkeypatch, capfd, embedder):
    import io

    monkeypatch.setenv("LLMLAB_DOCS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("llmlab.search.embeddings.default_embedder", lambda: embedder)
    questions = "How do I create a virtual environment?\nand how do I leave it?\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(questions))
    with quiet_transformers_restored():
        assert chat.cli([str(docs)]) == 0
    out = capfd.readouterr().out
    first, second = out.split("you> ")[1:]
    assert first.startswith("How do I create a virtual environment?\nFrom guide/venv.md")
    assert second.startswith("and how do I leave it?\nFrom guide/venv.md")
    assert "deactivate" in second and "deactivate" not in first


# --- the example commands of the docs, run as written, their answers checked ------------------

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE_DOCS = [
    "README.md",
    "phase-4-rag/README.md",
    "phase-4-rag/notes.md",
    "phase-4-rag/chat-with-your-docs.ipynb",
]


def example_commands() -> list[tuple[str, list[str]]]:
    """Every ``llmlab ask PATH "question" ...`` in the docs whose PATH is not a placeholder
    (``FOLDER``, ``PATH``), as (where, argv after ``llmlab ask``)."""
    import re
    import shlex

    found = []
    for name in EXAMPLE_DOCS:
        with open(os.path.join(ROOT, name), encoding="utf-8") as f:
            text = f.read()
        if name.endswith(".ipynb"):  # the markdown cells, as the learner reads them
            cells = json.loads(text)["cells"]
            text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        for m in re.finditer(r'llmlab ask ([^\s`"]+) ("[^"\n]+")([^\n`]*)', text):
            if m.group(1).isupper():
                continue
            found.append((f"{name}: {m.group(0)}", shlex.split(m.group(0))[2:]))
    return found


def answer_part(out: str) -> tuple[str, list[str]]:
    """(the shown answer, the files it cites) from ``llmlab ask``'s plain output."""
    import re

    if "Checked answer" in out:  # generate: the lines under the heading, up to the citations
        body = out.split("Checked answer", 1)[1].split("\n")[1:]
        where = re.compile(r"^\[\d+\] (\S+?):\d+(-\d+)?$")
        n = next((i for i, line in enumerate(body) if where.match(line)), len(body))
        return "\n".join(body[:n]), [
            where.match(line).group(1) for line in body[n:] if where.match(line)
        ]
    m = re.search(r"^From (\S+?):\S* \(.*?\):\n\n(.*?)\n\n\[1\] ", out, re.S | re.M)
    return (m.group(2), [m.group(1)]) if m else ("", [])


def test_the_docs_have_example_commands():
    commands = example_commands()
    assert len(commands) >= 3, commands  # the notes, the README and the notebook each show some
    assert any("--mode" in argv and "generate" in argv for _, argv in commands)


@pytest.mark.slow
@pytest.mark.parametrize(("where", "argv"), example_commands(), ids=lambda v: str(v)[:60])
def test_example_command_gives_the_right_answer(
    where, argv, tmp_path_factory, monkeypatch, capfd, embedder, lm
):
    """Run as written (from the repository folder); the answer must be the eval set's: the gold
    file cited and every group of gold strings in the shown answer (or a refusal, off topic)."""
    import llmlab.runtime.models as models
    from llmlab.rag.answer_eval import contains, load_eval_set

    folder, question = argv[0], argv[1]
    es = load_eval_set(os.path.basename(folder.rstrip("/")))
    assert os.path.samefile(os.path.join(ROOT, folder), es.folder), where
    q = next((q for q in es.questions if q.question == question), None)
    assert q is not None, f"{where}: not a question of the {es.name} eval set"
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("LLMLAB_DOCS_CACHE", str(tmp_path_factory.getbasetemp() / "docs-eval-index"))
    monkeypatch.setattr("llmlab.search.embeddings.default_embedder", lambda: embedder)
    monkeypatch.setattr(models, "load_lm", lambda *a, **k: lm)
    with quiet_transformers_restored():
        assert ask.cli(argv) == 0, where
    out = capfd.readouterr().out
    if "--json" in argv:
        result = json.loads(out)
        answer, cited = result["answer"], [c["source"] for c in result["citations"]]
        refused = result["abstained"]
    else:
        answer, cited = answer_part(out)
        refused = "could not find" in out or "not supported by your documents" in out
    if q.off_topic:
        assert refused, where
        return
    assert not refused and q.file in cited, (where, out[-800:])
    for group in q.must:
        assert any(contains(answer, m) for m in group), (where, group, answer)
