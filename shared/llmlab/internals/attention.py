"""Attention: the textbook formula in numpy, and the real model's attention weights.

Covers:
- ``scaled_dot_product_attention(q, k, v, mask)``, ``causal_mask(T)``, ``softmax``: the formula
  softmax(q·kᵀ / √d) · v, in numpy, small enough to follow by hand.
- ``attention_weights(lm, text)``: the model's own attention probabilities, shape
  (layers, heads, T, T), as transformers reports them (``output_attentions=True``).
- ``attention_from_weights(lm, text, layer)``: the same probabilities for one layer rebuilt from
  the weight matrices (RMSNorm → q/k projections → RoPE → grouped-query attention → causal mask →
  softmax) with ``llmlab.internals.transformer``'s pieces, so you can check that nothing is hidden.

Elsewhere: what heads *do* (scores, ablation) is ``llmlab.internals.heads``; pictures are
``llmlab.views.attention_plots`` and ``llmlab.views.attention_page``; ``llmlab attend`` is
``llmlab.cli.attend``. Leaves out: batches and padding (one text at a time), the KV cache, value
vectors and what a head *writes* (see ``llmlab.internals.transformer`` for whole blocks). The weights come
from the written-out "eager" attention (``llmlab.runtime.models.eager_attention``): the fused kernel the
model uses to generate (sdpa) never materialises them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from llmlab.runtime.architecture import check_layer_head, config_of
from llmlab.runtime.models import eager_attention

# --- the formula, in numpy --------------------------------------------------------------------


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax. ``softmax(np.array([0., 0.])) -> [0.5, 0.5]``; -inf gets 0."""
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # a row that is all -inf stays all 0 below
    e = np.exp(x - m)
    s = e.sum(axis=axis, keepdims=True)
    return e / np.where(s == 0, 1.0, s)


def causal_mask(T: int) -> np.ndarray:
    """(T, T) booleans, True where query i may look at key j (j <= i).

    ``causal_mask(3) -> [[T, F, F], [T, T, F], [T, T, T]]``
    """
    if T < 1:
        raise ValueError(f"T must be a positive number of tokens, got {T}.")
    return np.tril(np.ones((T, T), dtype=bool))  # (T, T)


def scaled_dot_product_attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """softmax(q·kᵀ/√d, masked) · v. Returns (output (..., Tq, dv), weights (..., Tq, Tk)).

    ``mask`` is boolean, True = may attend (the same convention as torch's ``attn_mask``);
    it broadcasts against the scores, so ``causal_mask(T)`` works for any number of heads.
    """
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k need the same last dimension, got {q.shape} and {k.shape}.")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v need the same number of positions, got {k.shape} and {v.shape}.")
    d = q.shape[-1]
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(d)  # (..., Tq, Tk)
    if mask is not None:
        scores = np.where(np.asarray(mask, dtype=bool), scores, -np.inf)
    weights = softmax(scores, axis=-1)  # (..., Tq, Tk), each row sums to 1
    return weights @ v, weights  # (..., Tq, dv), (..., Tq, Tk)


# --- the real model's attention ---------------------------------------------------------------


def token_ids(lm: Any, text: str | Sequence[int]) -> list[int]:
    """The ids the model sees for ``text`` (no BOS is added: SmolLM2's tokenizer adds none)."""
    if isinstance(text, str):
        if not text.strip():
            raise ValueError("text is empty (or only spaces): give some words to attend over.")
        ids = list(lm.tokenizer(text, add_special_tokens=False)["input_ids"])
    else:
        ids = [int(i) for i in text]
        if not ids:
            raise ValueError("the list of token ids is empty.")
    if len(ids) > lm.context_length:
        raise ValueError(
            f"{len(ids)} tokens is longer than the model's context ({lm.context_length} tokens): "
            "shorten the text."
        )
    return ids


def display_tokens(lm: Any, ids: Sequence[int]) -> list[str]:
    """Each id decoded on its own: ``[' cat', ' sat']`` (bytes of a split character show as �)."""
    return [lm.tokenizer.decode([i]) for i in ids]


def attention_weights(
    lm: Any, text: str | Sequence[int], max_tokens: int = 512
) -> tuple[list[str], np.ndarray]:
    """The model's attention probabilities: (tokens, weights (layers, heads, T, T)) as float32.

    ``weights[l, h, i, j]`` = how much token i looks at token j in head h of layer l.
    The array grows with T²: 512 tokens already take 30·9·512²·4 bytes ≈ 283 MB, hence ``max_tokens``.
    """
    import torch

    ids = token_ids(lm, text)
    if len(ids) > max_tokens:
        cfg = config_of(lm)
        size = cfg.n_layer * cfg.n_head * len(ids) ** 2 * 4 / 1e6
        raise ValueError(
            f"{len(ids)} tokens would need a {size:,.0f} MB attention array; the limit is "
            f"max_tokens={max_tokens}. Use a shorter text, or raise max_tokens if you have the memory."
        )
    with torch.no_grad(), eager_attention(lm):  # the fused kernel would return no weights
        out = lm.model(torch.tensor([ids]), output_attentions=True)  # attentions: L × (1, H, T, T)
    if out.attentions is None or out.attentions[0] is None:
        raise RuntimeError("The model returned no attention weights: is it a transformers model?")
    weights = torch.stack(out.attentions)[:, 0].float().numpy()  # (L, H, T, T)
    return display_tokens(lm, ids), weights


def layer_input(lm: Any, text: str | Sequence[int], layer: int) -> np.ndarray:
    """The residual stream entering decoder layer ``layer``: (T, hidden) float32."""
    import torch

    check_layer_head(lm, layer)
    ids = token_ids(lm, text)
    captured: dict[str, torch.Tensor] = {}

    def grab(module, args, kwargs):  # a forward pre-hook sees the layer's inputs
        captured["x"] = (args[0] if args else kwargs["hidden_states"]).detach()

    handle = lm.model.model.layers[layer].register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with torch.no_grad():
            lm.model(torch.tensor([ids]))
    finally:
        handle.remove()
    return captured["x"][0].float().numpy()  # (T, C)


def queries_keys(lm: Any, hidden: np.ndarray, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """Queries (H, T, d) and keys (KV, T, d) of ``layer`` for residual stream ``hidden`` (T, C).

    RMSNorm, the q/k projections and RoPE are ``llmlab.internals.transformer``'s (checked against
    transformers there); key heads are not yet repeated for grouped-query attention.
    """
    import torch

    from llmlab.internals import transformer

    check_layer_head(lm, layer)
    cfg = config_of(lm)
    x = torch.as_tensor(np.asarray(hidden, dtype=np.float32))[None]  # (1, T, C)
    norm = lm.model.model.layers[layer].input_layernorm.weight
    T = x.shape[1]
    cos, sin = transformer.rotary(torch.arange(T)[None], cfg.head_dim, cfg.rope_theta)  # (1, T, d)
    with torch.no_grad():
        x = transformer.rms_norm(x, norm, cfg.rms_norm_eps)  # (1, T, C)
        q, k, _ = transformer.queries_keys_values(lm, layer, x, cos, sin)  # (1, H|KV, T, d)
    return q[0].double().numpy(), k[0].double().numpy()  # (H, T, d), (KV, T, d)


def attention_from_weights(lm: Any, text: str | Sequence[int], layer: int) -> np.ndarray:
    """Layer ``layer``'s attention probabilities (H, T, T) computed by hand from its weights."""
    q, k = queries_keys(lm, layer_input(lm, text, layer), layer)  # (H, T, d), (KV, T, d)
    k = np.repeat(k, q.shape[0] // k.shape[0], axis=0)  # GQA: head h uses key head h // 3 (H, T, d)
    # the formula itself; the keys stand in for the values, whose output we do not need here
    _, weights = scaled_dot_product_attention(q, k, k, causal_mask(q.shape[1]))  # (H, T, T)
    return weights
