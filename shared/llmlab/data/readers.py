"""Read the files of a docs folder as text: what "chat with your docs" can ingest, and why not.

Covers ``.md``, ``.txt``, ``.rst``, ``.py`` (read as written) and ``.ipynb`` (markdown and code
cells, outputs left out, in jupytext "percent" form: each cell starts with a line
``# %% [markdown] cell 3`` or ``# %% cell 4``, so a line number points at a line a person can
find). ``read_document(path)`` returns a ``Document`` whose ``lines(start, end)`` turns character
offsets (a chunk's span) into 1-based line numbers. ``scan_folder(root)`` lists what can be read
and what is skipped with the reason (binary, too large, not valid notebook JSON, no permission).

Text that is not UTF-8 is decoded as cp1252 (Windows Western), else latin-1 (every byte is a
character, so it never fails); ``Document.encoding`` says which. A BOM is dropped.

Leaves out: PDF, HTML, Word, images, notebook outputs, and guessing encodings beyond those three.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from pathlib import Path

from llmlab.data.paragraphs import iter_files

SUPPORTED = (".md", ".txt", ".rst", ".py", ".ipynb")
MAX_BYTES = 2_000_000  # a 2 MB text file is a log or a data dump, not documentation
SNIFF_BYTES = 8192  # a NUL byte in the first 8 KB means binary (what git and grep do)
ENCODINGS = ("utf-8", "cp1252", "latin-1")


class NotReadable(ValueError):
    """A file that is skipped; the message is the reason (e.g. ``"binary (NUL bytes)"``)."""


@dataclass(frozen=True)
class Document:
    """One file's text. ``path`` is relative to the indexed folder (``notes/setup.md``)."""

    path: str
    text: str
    encoding: str = "utf-8"
    line_starts: list[int] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.line_starts:
            starts = [0] + [i + 1 for i, ch in enumerate(self.text) if ch == "\n"]
            object.__setattr__(self, "line_starts", starts)

    def line_of(self, offset: int) -> int:
        """The 1-based line holding character ``offset``."""
        return bisect.bisect_right(self.line_starts, offset)

    def lines(self, start: int, end: int) -> tuple[int, int]:
        """First and last line (1-based, inclusive) of ``text[start:end]``."""
        return self.line_of(start), self.line_of(max(start, end - 1))


@dataclass(frozen=True)
class Skipped:
    """A file that was not read, and why."""

    path: str
    reason: str


def decode(data: bytes) -> tuple[str, str]:
    """``(text, encoding)``: UTF-8 (BOM dropped), else cp1252, else latin-1.

    ``decode("café".encode("cp1252")) -> ("café", "cp1252")``.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for enc in ENCODINGS:
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte")  # pragma: no cover


def notebook_text(raw: str) -> str:
    """A notebook's markdown and code cells as one text (outputs left out), cells marked."""
    try:
        nb = json.loads(raw)
        cells = nb["cells"]
        if not isinstance(cells, list):
            raise TypeError
    except (json.JSONDecodeError, KeyError, TypeError):
        raise NotReadable("not a valid notebook (no JSON with a 'cells' list)") from None
    parts = []
    for i, cell in enumerate(cells, start=1):
        kind = cell.get("cell_type") if isinstance(cell, dict) else None
        if kind not in ("markdown", "code"):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        marker = f"# %% [markdown] cell {i}" if kind == "markdown" else f"# %% cell {i}"
        parts.append(f"{marker}\n{source.rstrip()}\n")
    return "\n".join(parts)


def read_document(path: str | Path, root: str | Path | None = None) -> Document:
    """The text of one supported file; ``NotReadable`` (with the reason) if it cannot be used."""
    path = Path(path)
    rel = path.relative_to(root).as_posix() if root is not None else path.name
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise NotReadable(
            f"unsupported type {suffix or '(no extension)'} (reads {', '.join(SUPPORTED)})"
        )
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise NotReadable(f"too large ({size / 1e6:.1f} MB > {MAX_BYTES / 1e6:.0f} MB)")
        data = path.read_bytes()
    except PermissionError:
        raise NotReadable("no permission to read it") from None
    except OSError as exc:
        raise NotReadable(f"cannot be read ({exc.strerror or exc})") from None
    if b"\x00" in data[:SNIFF_BYTES]:
        raise NotReadable("binary (NUL bytes)")
    text, encoding = decode(data)
    if suffix == ".ipynb":
        text = notebook_text(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return Document(rel, text, encoding)


def scan_folder(root: str | Path) -> tuple[list[Path], list[Skipped]]:
    """Supported files under ``root`` (sorted; hidden and tool folders skipped) and the ones to skip.

    Only cheap checks here (size, permission, links leading out of the folder);
    ``read_document`` finds binary content.
    Raises ``ValueError`` if ``root`` is missing, not a folder, or holds no supported file.
    """
    if not Path(root).is_dir():
        what = "is not a folder" if Path(root).exists() else "does not exist"
        raise ValueError(f"{str(root)!r} {what}: give the path of a folder of documents.")
    files = iter_files(root, SUPPORTED)
    if not files:
        raise ValueError(
            f"Nothing to index: {str(root)!r} has no {', '.join(SUPPORTED)} files "
            "(hidden folders such as .git are skipped). Point it at a docs folder."
        )
    ok, skipped = [], []
    inside = Path(root).resolve()
    for p in files:
        rel = p.relative_to(root).as_posix()
        try:
            target = p.resolve(strict=True)
        except (OSError, RuntimeError):  # a broken link, or a loop of links
            skipped.append(Skipped(rel, "a link that leads nowhere (broken, or a loop)"))
            continue
        if not target.is_relative_to(inside):  # a symlink out of the folder: never read it
            skipped.append(Skipped(rel, "a link to a file outside the folder (not read)"))
            continue
        try:
            size = p.stat().st_size
        except OSError as exc:
            skipped.append(Skipped(rel, f"cannot be read ({exc.strerror or exc})"))
            continue
        if size > MAX_BYTES:
            skipped.append(
                Skipped(rel, f"too large ({size / 1e6:.1f} MB > {MAX_BYTES / 1e6:.0f} MB)")
            )
        else:
            ok.append(p)
    return ok, skipped
