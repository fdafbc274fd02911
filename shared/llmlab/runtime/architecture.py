"""The architecture facts of a Llama-family model, read once from its config.

Every module that needs a model's shape (layers, heads, head size, RoPE base, context length)
calls ``config_of`` instead of reading ``model.config`` itself, so the differences between
transformers releases (``rope_parameters`` in 5.x, ``rope_theta``/``rope_scaling`` in 4.x,
a missing ``head_dim``) are handled in this one place. ``check_layer_head`` is the one check
that a layer or head number exists in a model, with an error that gives the valid range.

Leaves out: non-Llama architectures (mixture-of-experts, sliding-window attention) and RoPE
scaling variants; ``config_of`` says so with a clear error instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TransformerConfig:
    """Architecture facts of a Llama-family model (values in brackets: SmolLM2-135M)."""

    n_layer: int  # decoder blocks stacked on top of each other (30)
    n_head: int  # query heads per attention layer (9)
    n_kv_head: int  # key/value heads, each shared by n_head // n_kv_head query heads (3)
    n_embd: int  # width of the residual stream, C (576)
    head_dim: int  # size of one head's query/key/value vectors, hs (64)
    intermediate_size: int  # width of the SwiGLU MLP, F (1536)
    vocab_size: int  # rows of the embedding table, V (49152)
    rope_theta: float  # RoPE base: larger -> slower-turning rotations -> longer contexts
    rms_norm_eps: float  # keeps rms_norm from dividing by zero
    tie_word_embeddings: bool  # the LM head reuses the embedding matrix
    context_length: int  # positions the model was trained on (8192)


def hf_config(obj: Any) -> Any:
    """The transformers config behind an ``LM``, a model, or a config itself."""
    model = getattr(obj, "model", obj)  # LM -> its model; a model or config stays as it is
    return getattr(model, "config", model)


def rope_theta(cfg: Any) -> float:
    """The RoPE base, wherever this transformers release keeps it; plain RoPE only."""
    rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type != "default":
        raise NotImplementedError(
            f"llmlab re-implements plain RoPE only; this model uses rope_type={rope_type!r}."
        )
    theta = rope.get("rope_theta", getattr(cfg, "rope_theta", None))
    if theta is None:
        raise ValueError("This model's config has no RoPE base (rope_theta): is it Llama-family?")
    return float(theta)


def config_of(obj: Any) -> TransformerConfig:
    """Read the architecture facts from an ``LM``, a transformers model or its config (or pass one through).

    >>> config_of(lm).n_layer, config_of(lm).n_kv_head   # SmolLM2-135M
    (30, 3)
    """
    if isinstance(obj, TransformerConfig):
        return obj
    cfg = hf_config(obj)
    n_head = int(cfg.num_attention_heads)
    return TransformerConfig(
        n_layer=int(cfg.num_hidden_layers),
        n_head=n_head,
        n_kv_head=int(getattr(cfg, "num_key_value_heads", None) or n_head),
        n_embd=int(cfg.hidden_size),
        head_dim=int(getattr(cfg, "head_dim", None) or cfg.hidden_size // n_head),
        intermediate_size=int(cfg.intermediate_size),
        vocab_size=int(cfg.vocab_size),
        rope_theta=rope_theta(cfg),
        rms_norm_eps=float(cfg.rms_norm_eps),
        tie_word_embeddings=bool(getattr(cfg, "tie_word_embeddings", False)),
        context_length=int(cfg.max_position_embeddings),
    )


def check_layer_head(lm_or_weights: Any, layer: int | None = None, head: int | None = None) -> None:
    """Raise a ValueError naming the valid range if ``layer``/``head`` is out of range.

    ``lm_or_weights`` is an ``LM`` (or model) or a (layers, heads, T, T) weights array.
    """
    if isinstance(lm_or_weights, np.ndarray):
        n_layers, n_heads = lm_or_weights.shape[:2]
    else:
        cfg = config_of(lm_or_weights)
        n_layers, n_heads = cfg.n_layer, cfg.n_head
    for name, value, n in (("layer", layer, n_layers), ("head", head, n_heads)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an integer in 0..{n - 1}, got {value!r}.")
        if not 0 <= value < n:
            raise ValueError(
                f"{name} {value} is out of range: this model has {n} {name}s, numbered 0..{n - 1}."
            )
