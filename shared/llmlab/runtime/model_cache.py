"""The on-disk cache of the bundled language model: dequantize the GGUF once, read it fast after.

Transformers can read a GGUF file, but it has to *dequantize* it (turn the 4-bit numbers back into
float32), which takes tens of seconds, and a model loaded that way refuses ``save_pretrained``.
So the first load writes the float32 weights (safetensors), config and tokenizer into a cache
folder itself; later loads read that folder, several times faster (``make bench`` measures both:
benchmarks/RESULTS.md). The folder is written under a temporary name and renamed when complete,
so an interrupted first load never leaves a half-written cache; a cache that fails its checks
(format, CRC-32 of the weights) is rebuilt with a warning.

Covers: ``cache_dir()`` (every llmlab cache lives under it), ``lm_cache_path``,
``load_cached``, ``write_cache``, ``read_cache``, ``weights_digest``.
Leaves out: which model to load (``llmlab.runtime.models``) and how to dequantize (transformers).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Bump when the cache layout changes, so old caches are rebuilt rather than misread.
CACHE_FORMAT = 2
MANIFEST = "llmlab-cache.json"

ModelAndTokenizer = tuple[Any, Any]


def cache_dir() -> Path:
    """Where llmlab keeps dequantized models: $LLMLAB_CACHE, else the user cache dir."""
    env = os.environ.get("LLMLAB_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "llmlab"
    try:
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("llmlab", appauthor=False))
    except ImportError:
        return Path.home() / ".cache" / "llmlab"


def lm_cache_path(gguf: Path) -> Path:
    """The cache folder for a GGUF file; its name changes if the file or the format changes."""
    st = gguf.stat()
    key = hashlib.sha256(f"{gguf.name}:{st.st_size}:{CACHE_FORMAT}".encode()).hexdigest()[:12]
    return cache_dir() / f"{gguf.stem}-f32-{key}"


def load_cached(
    gguf: Path,
    build: Callable[[Path], ModelAndTokenizer],
    load_folder: Callable[[Path], ModelAndTokenizer],
) -> ModelAndTokenizer:
    """Read the cache of ``gguf`` with ``load_folder``; on a miss, ``build`` it and write it.

    A damaged cache is removed with a warning and rebuilt.
    """
    path = lm_cache_path(gguf)
    if path.is_dir():
        try:
            return read_cache(path, load_folder)
        except Exception as exc:
            warnings.warn(
                f"The model cache at {path} is damaged ({type(exc).__name__}: {exc}); "
                "rebuilding it from the bundled GGUF (this takes a while once).",
                stacklevel=3,
            )
            shutil.rmtree(path, ignore_errors=True)
    model, tok = build(gguf)
    write_cache(model, tok, path, source=gguf)
    return model, tok


def weights_digest(file: Path) -> str:
    """CRC-32 of the whole weights file: catches truncation and flipped bytes in ~0.2 s."""
    crc = 0
    with open(file, "rb") as f:
        while chunk := f.read(1 << 24):
            crc = zlib.crc32(chunk, crc)
    return f"{crc:08x}"


def write_cache(model: Any, tok: Any, path: Path, source: Path) -> None:
    """Write weights + config + tokenizer to ``path`` atomically (temp folder, then rename)."""
    from safetensors.torch import save_model

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        model.config.to_json_file(str(tmp / "config.json"))
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.to_json_file(str(tmp / "generation_config.json"))
        tok.save_pretrained(str(tmp))
        manifest = {
            "format": CACHE_FORMAT,
            "source": source.name,
            "source_bytes": source.stat().st_size,
            "weights_crc32": weights_digest(tmp / "model.safetensors"),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        try:
            os.rename(tmp, path)
        except OSError:
            if not path.is_dir():  # another process finished first: keep theirs
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def read_cache(path: Path, load_folder: Callable[[Path], ModelAndTokenizer]) -> ModelAndTokenizer:
    """Check the manifest (format, weights checksum), then load the folder."""
    manifest = json.loads((path / MANIFEST).read_text())
    if manifest.get("format") != CACHE_FORMAT:
        raise ValueError(f"cache format {manifest.get('format')} != {CACHE_FORMAT}")
    digest = weights_digest(path / "model.safetensors")
    if digest != manifest["weights_crc32"]:
        raise ValueError("weights checksum does not match the manifest")
    return load_folder(path)
