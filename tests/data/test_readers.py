"""Tests for llmlab.data.readers: which files are read, how, and why others are skipped."""

from __future__ import annotations

import json

import pytest

from llmlab.data.readers import NotReadable, decode, read_document, scan_folder


def test_utf8_bom_cp1252_and_latin1_are_decoded():
    assert decode("héllo".encode()) == ("héllo", "utf-8")
    assert decode(b"\xef\xbb\xbfhi") == ("hi", "utf-8")
    assert decode("café – 10€".encode("cp1252")) == ("café – 10€", "cp1252")
    assert decode(b"\x81\xe9")[1] == "latin-1"  # 0x81 is undefined in cp1252


def test_line_numbers_of_a_span(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\nfirst line\nsecond line\n")
    doc = read_document(tmp_path / "a.md", tmp_path)
    start = doc.text.index("first")
    end = doc.text.index("second line") + len("second line")
    assert doc.path == "a.md"
    assert doc.lines(start, end) == (3, 4)
    assert doc.line_of(0) == 1


def test_crlf_and_non_utf8_file(tmp_path):
    (tmp_path / "w.txt").write_bytes("naïve\r\nline two\r\n".encode("cp1252"))
    doc = read_document(tmp_path / "w.txt", tmp_path)
    assert doc.text == "naïve\nline two\n"
    assert doc.encoding == "cp1252"


def test_notebook_markdown_and_code_cells_without_outputs(tmp_path):
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": ["# Intro\n", "Some prose."]},
            {
                "cell_type": "code",
                "source": "x = 1\nprint(x)",
                "outputs": [{"text": "SECRET OUTPUT"}],
            },
            {"cell_type": "raw", "source": "raw stuff"},
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (tmp_path / "n.ipynb").write_text(json.dumps(nb))
    doc = read_document(tmp_path / "n.ipynb", tmp_path)
    assert "# %% [markdown] cell 1\n# Intro\nSome prose." in doc.text
    assert "# %% cell 2\nx = 1\nprint(x)" in doc.text
    assert "SECRET OUTPUT" not in doc.text and "raw stuff" not in doc.text
    line = doc.line_of(doc.text.index("print(x)"))
    assert doc.text.splitlines()[line - 1] == "print(x)"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("img.md", b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
        ("bad.ipynb", b"{not json", "not a valid notebook"),
        ("x.pdf", b"%PDF", "unsupported type .pdf"),
    ],
)
def test_unreadable_files_say_why(tmp_path, name, data, reason):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(NotReadable, match=reason):
        read_document(tmp_path / name, tmp_path)


def test_scan_folder_finds_supported_files_recursively_and_skips_hidden(tmp_path):
    for rel in [
        "a.md",
        "sub/b.py",
        "sub/deep/c.rst",
        "d.txt",
        "e.ipynb",
        "f.png",
        ".git/g.md",
        "h.markdown",
        "tool/README",  # a README without extension is documentation
        "tool/Makefile",  # not an upper-case name: not read
        "tool/run",
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("text")
    files, skipped = scan_folder(tmp_path)
    names = [p.relative_to(tmp_path).as_posix() for p in files]
    assert names == [
        "a.md",
        "d.txt",
        "e.ipynb",
        "h.markdown",
        "sub/b.py",
        "sub/deep/c.rst",
        "tool/README",
    ]
    assert skipped == []
    assert read_document(tmp_path / "tool/README", tmp_path).path == "tool/README"


def test_scan_folder_bad_input(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        scan_folder(tmp_path / "missing")
    (tmp_path / "f.md").write_text("x")
    with pytest.raises(ValueError, match="is not a folder"):
        scan_folder(tmp_path / "f.md")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "pic.png").write_bytes(b"\x89PNG")
    with pytest.raises(ValueError, match="Nothing to index"):
        scan_folder(empty)


def test_scan_folder_skips_links_that_leave_the_folder(tmp_path):
    outside = tmp_path / "secret.md"
    outside.write_text("api key: do-not-index\n")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\nfine\n")
    (docs / "inner.md").symlink_to(docs / "a.md")  # a link that stays inside: kept
    (docs / "leak.md").symlink_to(outside)
    ok, skipped = scan_folder(docs)
    assert sorted(p.name for p in ok) == ["a.md", "inner.md"]
    assert [s.path for s in skipped] == ["leak.md"] and "outside the folder" in skipped[0].reason


def test_scan_folder_skips_broken_links_and_link_loops(tmp_path):
    (tmp_path / "a.md").write_text("# A\n")
    (tmp_path / "gone.md").symlink_to(tmp_path / "missing.md")
    (tmp_path / "loop1.md").symlink_to(tmp_path / "loop2.md")
    (tmp_path / "loop2.md").symlink_to(tmp_path / "loop1.md")
    ok, skipped = scan_folder(tmp_path)
    assert [p.name for p in ok] == ["a.md"]
    assert sorted(s.path for s in skipped) == ["gone.md", "loop1.md", "loop2.md"]
