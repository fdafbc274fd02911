"""Read the files of a docs folder as text: what "chat with your docs" can ingest, and why not.

Covers ``.md``, ``.markdown``, ``.txt``, ``.rst``, ``.py``, files named like ``README``,
``INSTALL`` or ``NEWS`` (no extension, an upper-case name: read as plain text), all read as
written, and ``.ipynb`` (markdown and code
cells, outputs left out, in jupytext "percent" form: each cell starts with a line
``# %% [markdown] cell 3`` or ``# %% cell 4``, so a line number points at a line a person can
find). ``read_document(path)`` returns a ``llmlab.data.documents.Document`` whose
``lines(start, end)`` turns character offsets (a chunk's span) into 1-based line numbers and
``passage(start, end)`` makes the Passage an index stores. ``scan_folder(root)`` lists what can be read
and what is skipped with the reason (binary, too large, not valid notebook JSON, no permission).

Text that is not UTF-8 is decoded as cp1252 (Windows Western), else latin-1 (every byte is a
character, so it never fails); ``Document.encoding`` says which. A BOM is dropped.

Leaves out: PDF, HTML, Word, images, notebook outputs, and guessing encodings beyond those three.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from llmlab.data.documents import Document
from llmlab.data.paragraphs import iter_files

SUPPORTED = (".md", ".markdown", ".txt", ".rst", ".py", ".ipynb")
PLAIN_NAME = re.compile(r"[A-Z][A-Z0-9_-]*")  # README, INSTALL, NEWS, COPYING: text, no extension
MAX_BYTES = 2_000_000  # a 2 MB text file is a log or a data dump, not documentation
SNIFF_BYTES = 8192  # a NUL byte in the first 8 KB means binary (what git and grep do)
ENCODINGS = ("utf-8", "cp1252", "latin-1")


class NotReadable(ValueError):
    """A file that is skipped; the message is the reason (e.g. ``"binary (NUL bytes)"``)."""


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
    if suffix not in SUPPORTED and not is_plain_name(path.name):
        raise NotReadable(
            f"unsupported type {suffix or '(no extension)'} (reads {', '.join(SUPPORTED)} "
            "and upper-case names such as README)"
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
    return Document(path=rel, text=text, encoding=encoding)


def is_plain_name(name: str) -> bool:
    """A file with no extension whose name is upper case, the way READMEs are named: text.

    ``is_plain_name("README") -> True``; ``is_plain_name("Makefile") -> False``.
    """
    return PLAIN_NAME.fullmatch(name) is not None


def scan_folder(root: str | Path) -> tuple[list[Path], list[Skipped]]:
    """Supported files under ``root`` (sorted; hidden and tool folders skipped) and the ones to skip.

    Only cheap checks here (size, permission, links leading out of the folder);
    ``read_document`` finds binary content.
    Raises ``ValueError`` if ``root`` is missing, not a folder, or holds no supported file.
    """
    if not Path(root).is_dir():
        what = "is not a folder" if Path(root).exists() else "does not exist"
        raise ValueError(f"{str(root)!r} {what}: give the path of a folder of documents.")
    files = [
        p
        for p in iter_files(root, (*SUPPORTED, ""))
        if p.suffix.lower() in SUPPORTED or is_plain_name(p.name)
    ]
    if not files:
        raise ValueError(
            f"Nothing to index: {str(root)!r} has no {', '.join(SUPPORTED)} or README-like files "
            "(hidden folders such as .git are skipped). Point it at a docs folder."
        )
    ok, skipped = [], []
    inside = Path(root).resolve()
    for p in files:
        rel = p.relative_to(root).as_posix()
        try:
            target = p.resolve(strict=True)
        except (OSError, RuntimeError):  # a broken link, or a loop of links
            skipped.append(
                Skipped(path=rel, reason="a link that leads nowhere (broken, or a loop)")
            )
            continue
        if not target.is_relative_to(inside):  # a symlink out of the folder: never read it
            skipped.append(
                Skipped(path=rel, reason="a link to a file outside the folder (not read)")
            )
            continue
        try:
            size = p.stat().st_size
        except OSError as exc:
            skipped.append(Skipped(path=rel, reason=f"cannot be read ({exc.strerror or exc})"))
            continue
        if size > MAX_BYTES:
            skipped.append(
                Skipped(
                    path=rel, reason=f"too large ({size / 1e6:.1f} MB > {MAX_BYTES / 1e6:.0f} MB)"
                )
            )
        else:
            ok.append(p)
    return ok, skipped
