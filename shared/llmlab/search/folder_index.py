"""Index a folder of notes for semantic search, and keep the index cached between runs.

Covers: ``index_folder(folder)`` (every paragraph ``Passage`` of the ``.md``/``.txt`` files, cut
by ``llmlab.data.paragraphs``, embedded into a ``llmlab.search.semantic_index.SemanticIndex``:
id ``passage.where``, metadata its place ``{source, start, end, first_line, last_line}``), its cache under ``llmlab.runtime.model_cache.cache_dir()/indexes/`` (one folder per indexed folder,
reused while no file was added, removed or changed and the model is the same; a cache that
cannot be read is rebuilt with a warning that says why), and ``format_hit`` (one hit as two
lines of text, as ``llmlab search`` prints it).

Leaves out: watching a folder for changes, updating only the files that changed (any change
rebuilds the whole index), and removing caches of folders that no longer exist.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

from llmlab.data.paragraphs import (
    EXTENSIONS,
    fingerprint,
    ingest_folder,
    iter_files,
    passage_metadata,
)
from llmlab.search.embeddings import default_embedder
from llmlab.search.semantic_index import Hit, SemanticIndex, read_manifest


def check_folder(folder: str | Path, extensions: tuple[str, ...] = EXTENSIONS) -> list[Path]:
    """The note files under ``folder``; a clear ValueError if it is missing, a file, has none, or
    only blank ones.

    Cheap (files are read only until one holds text: usually the first), so a command can check
    its input before loading a model.
    """
    files = iter_files(folder, extensions)  # raises if folder is missing or not a folder
    if not files:
        raise ValueError(
            f"Nothing to index: {str(folder)!r} has no {'/'.join(extensions)} files (hidden "
            "folders such as .git are skipped). Point it at a folder of notes."
        )
    if not any(p.read_text(encoding="utf-8", errors="replace").strip() for p in files):
        raise ValueError(_all_blank(folder, len(files), extensions))
    return files


def _all_blank(folder: str | Path, n: int, extensions: tuple[str, ...]) -> str:
    return (
        f"Nothing to index: the {n} {'/'.join(extensions)} file(s) in {str(folder)!r} are "
        "empty. Point it at a folder of notes."
    )


def folder_cache_path(folder: str | Path, extensions: tuple[str, ...] = EXTENSIONS) -> Path:
    """Where the cached index of ``folder`` lives: ``cache_dir()/indexes/<hash of its path>``."""
    from llmlab.runtime.model_cache import cache_dir

    key = str(Path(folder).resolve())
    if tuple(extensions) != EXTENSIONS:
        key += repr(sorted(extensions))
    return cache_dir() / "indexes" / hashlib.sha256(key.encode()).hexdigest()[:16]


def cached_index(where: Path, fingerprint_: str, embedder: Any) -> SemanticIndex | None:
    """The index saved at ``where`` if it is still valid for these files and this model, else None.

    "Not there" and "files changed" are the normal reasons to rebuild and pass silently; a cache
    that exists but cannot be read (damaged, old format, edited) gives a warning with the reason.
    """
    from llmlab.runtime.models import embedder_name

    if not (where / "manifest.json").is_file():
        return None
    try:
        manifest = read_manifest(where)
        if manifest["extra"].get("fingerprint") != fingerprint_:
            return None  # a file was added, removed or changed since the index was built
        if manifest["model"] != embedder_name(embedder):
            return None  # built with another embedding model: its vectors are not comparable
        return SemanticIndex.load(where, embedder)
    except (ValueError, OSError, KeyError, AttributeError) as exc:
        warnings.warn(
            f"The cached index at {where} cannot be used ({type(exc).__name__}: {exc}); "
            "rebuilding it from the files.",
            stacklevel=3,
        )
        return None


def index_folder(
    folder: str | Path,
    embedder: Any = None,
    cache: bool = True,
    rebuild: bool = False,
    extensions: tuple[str, ...] = EXTENSIONS,
) -> tuple[SemanticIndex, bool]:
    """Index every paragraph of the ``.md``/``.txt`` files (or ``extensions``) under ``folder``.

    Returns ``(index, rebuilt)``. With ``cache=True`` a saved index is reused as long as no file
    was added, removed or changed (paths, sizes and modification times all match) and the
    embedding model is the same; otherwise (or with ``rebuild=True``) it is rebuilt and saved.
    """
    folder = Path(folder)
    check_folder(folder, extensions)
    print_ = fingerprint(folder, extensions)
    where = folder_cache_path(folder, extensions)
    embedder = default_embedder() if embedder is None else embedder
    if cache and not rebuild:
        index = cached_index(where, print_, embedder)
        if index is not None:
            return index, False
    passages = ingest_folder(folder, extensions=extensions)
    if not passages:  # check_folder found text, but a file changed since: say it the same way
        raise ValueError(_all_blank(folder, len(iter_files(folder, extensions)), extensions))
    index = SemanticIndex(embedder)
    index.add(
        [p.text for p in passages],
        ids=[p.where for p in passages],
        metadata=[passage_metadata(p) for p in passages],
    )
    if cache:
        index.save(where, extra={"folder": str(folder.resolve()), "fingerprint": print_})
    return index, True


def format_hit(rank: int, hit: Hit, width: int = 160) -> str:
    """``1. 0.712  notes/a.md:3-5`` and the start of the passage on the next line."""
    snippet = " ".join(hit.text.split())
    snippet = snippet if len(snippet) <= width else snippet[: width - 1] + "…"
    return f"{rank:>2}. {hit.score:.3f}  {hit.id}\n    {snippet}"
