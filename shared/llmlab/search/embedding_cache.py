"""A fingerprinted on-disk cache of embeddings: embed a corpus once, reuse it in every run.

Covers:
- ``embed_cached(texts)``: the same ``(n, dim)`` float32 unit vectors as ``llmlab.search.embeddings.embed``,
  but saved to ``cache_dir()/embeddings/<fingerprint>.npy`` the first time and read back after.
- ``fingerprint(texts, model_name)``: sha256 over the embedder's name, the normalisation and
  every text (each length-prefixed, so ``["ab", "c"]`` and ``["a", "bc"]`` differ). Change one
  character of one text, or the model, and the fingerprint (so the file) changes: a stale cache
  can never be returned.
- Safe writes: the array goes to a temporary file in the same folder and is renamed into place
  (``os.replace`` is atomic), so a crash never leaves half a file under the real name. A file that
  is damaged anyway (truncated, wrong shape, not unit length) is reported with a warning saying
  why, and recomputed.

- Within one process, texts already embedded for another list (two chunkings of the same page
  share most chunks) are taken from memory, keyed by (cache folder, embedder, text): only the new
  texts of a list go through the model. A damaged file is recomputed from the model alone.

Leaves out: evicting old entries (delete the folder to free space), sharing a cache between
machines, caching per text on disk (the whole list is one file: reorder it and the file is new).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

NORMALISATION = "unit-l2"  # what embed() does to every vector; part of the fingerprint
CACHE_FORMAT = 1  # bump when the file layout changes: old files are then simply not found
MEMORY_MAX = 20_000  # vectors kept in memory for reuse across lists (~30 MB at 384 dims)
_memory: dict[tuple[str, str, str], np.ndarray] = {}  # (cache folder, embedder, text) -> (dim,)


class CacheWarning(UserWarning):
    """A cached embedding file could not be used (the message says why); it was recomputed."""


def cache_folder() -> Path:
    """``llmlab.runtime.model_cache.cache_dir()/embeddings`` (honours ``$LLMLAB_CACHE``)."""
    from llmlab.runtime.model_cache import cache_dir

    return cache_dir() / "embeddings"


def fingerprint(texts: Sequence[str], model_name: str) -> str:
    """sha256 hex digest of (format, model name, normalisation, every text).

    ``fingerprint(["a"], "m") != fingerprint(["a"], "other-model")``.
    """
    h = hashlib.sha256(
        f"llmlab-embeddings/{CACHE_FORMAT}\0{model_name}\0{NORMALISATION}\0".encode()
    )
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))  # length prefix: no two lists share a byte stream
        h.update(b)
    return h.hexdigest()


def cache_path(texts: Sequence[str], model: Any = None) -> Path:
    """Where ``embed_cached(texts, model)`` keeps its array."""
    from llmlab.runtime.models import embedder_name
    from llmlab.search.embeddings import default_embedder

    model = default_embedder() if model is None else model
    return cache_folder() / f"{fingerprint(list(texts), embedder_name(model))}.npy"


def _read(path: Path, n: int) -> np.ndarray | None:
    """The cached array, or None (with a CacheWarning saying why) if it cannot be trusted."""
    try:
        vectors = np.load(path, allow_pickle=False)  # (n, dim)
    except (OSError, ValueError, EOFError) as exc:
        reason = f"it could not be read ({type(exc).__name__}: {exc})"
    else:
        norms = np.linalg.norm(vectors, axis=-1) if vectors.ndim == 2 else None  # (n,)
        if vectors.ndim != 2 or vectors.shape[0] != n:
            reason = f"it holds shape {vectors.shape}, expected ({n}, dim)"
        elif vectors.dtype != np.float32:
            reason = f"it holds {vectors.dtype}, expected float32"
        elif not np.all(np.isfinite(vectors)) or not np.allclose(norms, 1.0, atol=1e-3):
            reason = "its vectors are not finite unit vectors"
        else:
            return vectors
    warnings.warn(
        f"Ignoring the damaged embedding cache {path}: {reason}. Recomputing it.",
        CacheWarning,
        stacklevel=3,
    )
    return None


def _write(path: Path, vectors: np.ndarray) -> None:
    """Write ``vectors`` to ``path`` atomically: temp file in the same folder, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem[:16]}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, vectors)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remember(folder: str, name: str, texts: Sequence[str], vectors: np.ndarray) -> None:
    if len(_memory) + len(texts) > MEMORY_MAX:
        _memory.clear()  # simplest eviction: start over
    kept = np.array(vectors, dtype=np.float32)  # a copy the caller cannot change
    kept.flags.writeable = False
    for text, vector in zip(texts, kept, strict=True):
        _memory[(folder, name, text)] = vector


def embed_cached(
    texts: Sequence[str], model: Any = None, batch_size: int = 16, show_progress: bool | None = None
) -> np.ndarray:
    """``embed(texts)`` computed once, then read from disk: ``(n, dim)`` float32 unit vectors.

    ``embed_cached(["a dog", "a puppy"]).shape -> (2, 384)`` with the bundled MiniLM.
    The second call with the same texts and model reads ``cache_path(texts, model)`` (milliseconds).
    A new list embeds only the texts this process has not embedded yet (for the same cache folder).
    ``batch_size`` 16, not 64: a batch is padded to its longest text, and chunk or sentence lengths
    have a long tail (2 to 256 tokens), so big batches compute mostly padding.
    """
    from llmlab.runtime.models import embedder_name
    from llmlab.search.embeddings import check_texts, default_embedder, embed

    texts = check_texts(texts)
    model = default_embedder() if model is None else model
    path = cache_path(texts, model)
    folder, name = str(path.parent), embedder_name(model)
    damaged = False
    if path.is_file():
        cached = _read(path, len(texts))
        if cached is not None:
            _remember(folder, name, texts, cached)
            return cached
        damaged = True  # something went wrong: take nothing from memory either
    known = (
        {}
        if damaged
        else {t: _memory[(folder, name, t)] for t in texts if (folder, name, t) in _memory}
    )
    todo = [t for t in dict.fromkeys(texts) if t not in known]  # each new text once
    if todo:
        fresh = embed(
            todo, batch_size=batch_size, model=model, show_progress=show_progress
        )  # (m, dim)
        known.update(zip(todo, fresh, strict=True))
    vectors = np.ascontiguousarray(
        np.stack([known[t] for t in texts]), dtype=np.float32
    )  # (n, dim)
    _remember(folder, name, texts, vectors)
    try:
        _write(path, vectors)
    except OSError as exc:  # a read-only or full disk costs speed, not correctness
        warnings.warn(
            f"Could not write the embedding cache {path}: {exc}.", CacheWarning, stacklevel=2
        )
    return vectors
