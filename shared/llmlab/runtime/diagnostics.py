"""``llmlab doctor``: is this machine ready for LLM Lab?

Prints versions (Python, torch, transformers), whether each bundled model is found and loads,
how long the language model takes to load (building the cache on the very first run), where
the cache lives, and whether Hugging Face is in offline mode. Exits non-zero, with the command
that fixes it, when something is missing. It never touches the network.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import sys
import time

from llmlab.runtime import model_cache, models


def _version(pkg: str) -> str:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return "not installed"


def run_checks(load: bool = True) -> list[tuple[str, bool, str]]:
    """Run every check; return (what, ok, detail) rows."""
    rows: list[tuple[str, bool, str]] = []

    py_ok = sys.version_info >= (3, 10)
    rows.append(("python", py_ok, platform.python_version() + ("" if py_ok else "  (need 3.10+)")))
    for pkg in ["torch", "transformers", "sentence-transformers", "tiktoken", "gguf", "accelerate"]:
        v = _version(pkg)
        fix = "" if v != "not installed" else f"  -> pip install {pkg}   (or: make lab)"
        rows.append((pkg, v != "not installed", v + fix))

    # tokenizer
    try:
        enc = models.load_tokenizer()
        ids = enc.encode("hello world")
        rows.append(
            ("tokenizer cl100k_base", ids == [15339, 1917], f"offline, {enc.n_vocab} tokens")
        )
    except Exception as exc:
        rows.append(("tokenizer cl100k_base", False, str(exc)))

    # embedder
    try:
        path = models.bundled_embedder_path()
        detail = f"found at {path}"
        ok = path.is_dir()
        if load and ok:
            t0 = time.perf_counter()
            emb = models.load_embedder()
            dim = getattr(emb, "get_embedding_dimension", emb.get_sentence_embedding_dimension)()
            detail += f"; loads in {time.perf_counter() - t0:.1f} s, {dim}-d vectors"
        rows.append(("embedder all-MiniLM-L6-v2", ok, detail))
    except Exception as exc:
        rows.append(("embedder all-MiniLM-L6-v2", False, str(exc)))

    # language model
    try:
        gguf = models.bundled_gguf_path()
        cache = models.lm_cache_path(gguf)
        cached = cache.is_dir()
        detail = f"found at {gguf}"
        if load:
            t0 = time.perf_counter()
            lm = models.load_lm()
            dt = time.perf_counter() - t0
            n = sum(p.numel() for p in lm.model.parameters())
            how = "from cache" if cached else "first load: dequantized and cached"
            detail += f"; loads in {dt:.1f} s ({how}), {n / 1e6:.1f}M parameters"
        rows.append(("LM SmolLM2-135M-Instruct", True, detail))
        rows.append(("model cache", True, str(cache)))
    except Exception as exc:
        rows.append(("LM SmolLM2-135M-Instruct", False, str(exc)))
        rows.append(("model cache", True, str(model_cache.cache_dir())))

    offline = [v for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE") if os.environ.get(v)]
    rows.append(
        (
            "network",
            True,
            ("offline mode (" + ", ".join(offline) + " set)" if offline else "not forced offline")
            + "; the bundled models never need the network",
        )
    )
    rows.append(("notebook outputs", True, _git_filter_status()))
    for var in ("LLMLAB_LM", "LLMLAB_EMBEDDER"):
        if os.environ.get(var):
            rows.append((var, True, f"{os.environ[var]} (overrides the bundled default)"))
    return rows


def _git_filter_status() -> str:
    """Whether this checkout's git keeps notebook outputs out of commits (tools/strip_notebooks.py)."""
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    try:
        out = subprocess.run(
            ["git", "config", "filter.nbstripout.clean"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "git not found: nothing to keep out of commits"
    if "nbstripout" in out.stdout:
        return "kept out of git by the nbstripout filter (yours stay on disk)"
    return "not filtered: run `make setup` in the repo to keep outputs out of commits"
