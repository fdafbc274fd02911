"""The adapter cache: a trained adapter kept on disk under a fingerprint of what decided it.

A lesson that trains must not train again when it is run again. So every training run here
(SFT, DPO, the contamination experiment) is keyed by a fingerprint of everything that decides
the result: the training code's version (``TRAINING_FORMAT``), the settings, the data and the
base model's weights (``model_identity``). Same key, same adapter: it is read from the cache.

Covers:
- ``fingerprint(*parts)``: a short stable hash of JSON-able parts.
- ``model_identity(model)``: a fingerprint of a model's base weights (LoRA wrappers left out).
- ``base_model_name(lm)``: the name other tools load the base model by (saved in the adapter).
- ``adapter_cache_dir()`` and ``cached_adapter(key, train_fn)``: train once into a temporary
  folder, rename it into place when it is complete, read it from then on.

Leaves out: evicting old adapters (delete ``cache_dir()/adapters`` to reclaim the space) and
sharing a cache between machines.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from llmlab.runtime.model_cache import cache_dir
from llmlab.training.lora import CONFIG_FILE

if TYPE_CHECKING:
    from llmlab.runtime.models import LM

TRAINING_FORMAT = 1  # bump when training code changes what an adapter learns: old caches retrain


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-able parts (data, settings, model identity)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@torch.no_grad()
def model_identity(model: Any) -> str:
    """A fingerprint of a model's base weights (a strided sample of every tensor, LoRA left out):
    two models with the same identity compute the same thing. Takes milliseconds."""
    digest = hashlib.sha256()
    for name, p in sorted(model.named_parameters(remove_duplicate=False)):
        if ".lora_" in name:
            continue
        flat = p.detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // 256)].float()  # (<= ~257,)
        digest.update(name.replace(".base.", ".").encode())
        digest.update(sample.numpy().tobytes())
    return digest.hexdigest()[:16]


def base_model_name(lm: LM) -> str:
    """The name other tools load the base model by (the Hugging Face id of the bundled model)."""
    from llmlab.runtime.models import LM_ALIASES

    return "HuggingFaceTB/SmolLM2-135M-Instruct" if lm.name.lower() in LM_ALIASES else lm.name


def adapter_cache_dir() -> Path:
    """Where trained adapters are kept: ``cache_dir()/adapters/<fingerprint>/``."""
    return cache_dir() / "adapters"


def cached_adapter(key: str, train_fn: Callable[[Path], None], required: str = CONFIG_FILE) -> Path:
    """The adapter folder for ``key``: trained once, then read from the cache.

    On a miss, ``train_fn(folder)`` trains and writes the adapter (and anything else, e.g. a
    report) into a temporary folder, which is renamed into place only when it returns, so an
    interrupted run never leaves half an adapter. Load it with ``load_adapter(model, folder)``.
    ``required``: the file that proves a run finished (another name for what is not a LoRA
    adapter, e.g. the weights of whole trained blocks).
    """
    folder = adapter_cache_dir() / key
    if (folder / required).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=folder.parent))
    try:
        train_fn(tmp)
        if not (tmp / required).is_file():
            raise RuntimeError(f"train_fn wrote no {required}: call save_adapter(model, folder).")
        if folder.exists():  # another process finished first, or a broken leftover
            shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
