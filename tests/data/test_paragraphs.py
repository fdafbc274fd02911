"""Tests for llmlab.data.paragraphs: paragraphs with line numbers, folder walking, the fingerprint."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmlab.data.paragraphs import fingerprint, ingest_folder, iter_files, split_paragraphs


def test_split_paragraphs_lines():
    text = "# Title\n\nFirst para\nstill first\n\n\nSecond\n```\ncode\n\nmore\n```\n\n## Sub\nunder sub\n"
    assert split_paragraphs(text) == [
        (1, 4, "# Title\n\nFirst para\nstill first"),  # a heading sticks to its paragraph
        (7, 12, "Second\n```\ncode\n\nmore\n```"),  # a code block is never split
        (14, 15, "## Sub\nunder sub"),
    ]
    assert split_paragraphs("a\nb\n\nc") == [(1, 2, "a\nb"), (4, 4, "c")]
    # headings and top-level list items start a passage; indented lines stay with their item
    assert split_paragraphs("## A\n- one\n- two\n  more\n1. three\nText\n## B\nb") == [
        (1, 2, "## A\n- one"),
        (3, 4, "- two\n  more"),
        (5, 6, "1. three\nText"),
        (7, 8, "## B\nb"),
    ]
    long = "\n".join(f"line {i} " + "x" * 50 for i in range(100))
    pieces = split_paragraphs(long, max_chars=300)
    assert all(len(p) <= 300 for _, _, p in pieces)
    assert pieces[0][0] == 1 and pieces[-1][1] == 100
    assert sum(e - s + 1 for s, e, _ in pieces) == 100


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "",
                "  ",
                "# Head",
                "## Sub",
                "- item",
                "  indented",
                "1. step",
                "```",
                "plain text",
                "x" * 70,
            ]
        ),
        max_size=40,
    )
)
def test_split_paragraphs_keeps_every_line_once(lines):
    text = "\n".join(lines)
    pieces = split_paragraphs(text, max_chars=150)
    # every non-blank line lands in exactly one passage, in order, and line numbers point at it
    assert [ln for _, _, p in pieces for ln in p.split("\n") if ln.strip()] == [
        ln for ln in lines if ln.strip()
    ]
    for start, end, para in pieces:
        assert para == "\n".join(lines[start - 1 : end])  # the lines exactly as written
    assert all(e1 < s2 for (_, e1, _), (s2, _, _) in zip(pieces, pieces[1:], strict=False))


def make_notes(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    (folder / "garden.md").write_text(
        "# Garden\n\nWater the tomato plants every morning in July.\n\n"
        "Compost needs brown leaves and green kitchen scraps.\n"
    )
    (folder / "sub" / "computers.txt").write_text(
        "My laptop fan is very loud.\n\nBack up the photos to the external drive every Sunday.\n"
    )
    (folder / ".hidden" / "secret.md").write_text(
        "Water the tomato plants. This must not be indexed.\n"
    )
    (folder / "image.png").write_bytes(b"\x89PNG")
    return folder


def test_ingest_folder(tmp_path):
    notes = make_notes(tmp_path / "notes")
    assert [p.relative_to(notes).as_posix() for p in iter_files(notes)] == [
        "garden.md",
        "sub/computers.txt",
    ]
    passages = ingest_folder(notes)
    assert [p.where for p in passages] == [
        "garden.md:1-3",
        "garden.md:5",
        "sub/computers.txt:1",
        "sub/computers.txt:3",
    ]
    assert passages[0].text.startswith("# Garden\n\nWater the tomato")
    for p in passages:  # each passage is the exact text of its file between its offsets
        text = (notes / p.source).read_text()
        assert text[p.start : p.end] == p.text
        assert text.count("\n", 0, p.start) + 1 == p.first_line
    with pytest.raises(ValueError, match="does not exist"):
        ingest_folder(tmp_path / "missing")


def test_iter_files_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        iter_files(tmp_path / "missing")
    (tmp_path / "a.md").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        iter_files(tmp_path / "a.md")


def test_fingerprint_changes_with_any_file(tmp_path):
    notes = make_notes(tmp_path / "notes")
    old = fingerprint(notes)
    assert fingerprint(notes) == old
    time.sleep(0.01)
    (notes / "garden.md").write_text("Bees like lavender flowers.\n")
    changed = fingerprint(notes)
    assert changed != old
    (notes / "new.txt").write_text("a new file\n")
    assert fingerprint(notes) != changed
    before = fingerprint(notes)
    (notes / ".hidden" / "secret.md").write_text("hidden folders are not indexed\n")
    assert fingerprint(notes) == before
