"""The KV cache: the keys and values a model keeps so it never re-reads the past.

Every token's keys and values (one pair per layer) never change once computed, so a forward
pass hands them back and the next pass feeds only the new tokens. This module is the one place
that knows how the installed transformers release spells that, so lessons and the rest of
llmlab never write ``out.cache if hasattr(...) else out.past_key_values``.

Covers:
- ``cached_forward``: one forward pass that reads and extends a cache (thread policy applied).
- ``cache_kwarg`` / ``cache_from_output``: the cache's argument name and where the output keeps it.
- ``cache_tensors``: each layer's ``(keys, values)``, each ``(B, kv_heads, T, head_dim)``;
  ``make_cache``: a cache from such tensors (optionally a prefix); ``select_rows``: some batch
  rows of a cache; ``random_cache``: one of a given length.
- ``kv_cache_bytes``: the formula 2 x layers x kv_heads x head_dim x tokens x bytes per number;
  ``cache_tensor_bytes``: what a real cache's tensors hold (the two agree to the byte).

Leaves out: static/offloaded/quantized caches and sliding-window layers.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llmlab.runtime.architecture import config_of, hf_config
from llmlab.runtime.threads import use_threads

if TYPE_CHECKING:
    import torch


def cache_kwarg(model: Any) -> str:
    """The forward argument for the cache: ``cache`` in recent transformers, else ``past_key_values``."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_from_output(out: Any) -> Any:
    """The KV cache a forward pass handed back (``out.cache`` or ``out.past_key_values``)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


def cached_forward(
    model: Any, input_ids: torch.Tensor, cache: Any = None, **kwargs: Any
) -> tuple[Any, Any]:
    """Run ``model`` on ``input_ids`` ``(B, T)`` on top of ``cache``; return (output, new cache).

    ``cache=None`` starts a new one. Extra ``kwargs`` (``attention_mask``, ``position_ids``,
    ``logits_to_keep``) go to the model. Uses ``llmlab.runtime.threads``: the cores no other
    program is keeping busy.
    """
    import torch

    with torch.inference_mode(), use_threads(int(input_ids.numel())):
        out = model(input_ids=input_ids, use_cache=True, **{cache_kwarg(model): cache}, **kwargs)
    return out, cache_from_output(out)


def cache_tensors(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The (keys, values) tensors of each layer, each ``(batch, kv_heads, tokens, head_dim)``."""
    if hasattr(cache, "layers"):  # transformers >= 4.56: DynamicCache.layers[i].keys / .values
        return [(layer.keys, layer.values) for layer in cache.layers]
    if hasattr(cache, "key_cache"):  # older DynamicCache
        return list(zip(cache.key_cache, cache.value_cache, strict=True))
    return [(k, v) for k, v in cache]  # legacy tuple of (keys, values)


def cache_length(cache: Any) -> int:
    """How many tokens a cache holds (0 for ``None``)."""
    if cache is None:
        return 0
    keys = cache_tensors(cache)[0][0]  # (B, kv_heads, T, head_dim)
    return 0 if keys is None else int(keys.shape[-2])


def cache_tensor_bytes(cache: Any) -> int:
    """Bytes actually held by a KV cache's tensors (what ``kv_cache_bytes`` predicts)."""
    return sum(
        t.numel() * t.element_size() for kv in cache_tensors(cache) for t in kv if t is not None
    )


def make_cache(
    model_or_config: Any,
    kvs: Sequence[tuple[torch.Tensor, torch.Tensor]],
    n_tokens: int | None = None,
) -> Any:
    """A fresh cache holding ``kvs`` (shared, not copied); ``n_tokens`` keeps only the first n.

    Handy to go back to a cached prefix: ``make_cache(lm.model, cache_tensors(c), 100)``.
    """
    from transformers import DynamicCache

    try:
        cache = DynamicCache(config=hf_config(model_or_config))
    except TypeError:  # older transformers
        cache = DynamicCache()
    for i, (k, v) in enumerate(kvs):  # each (B, kv_heads, T, head_dim)
        if n_tokens is not None:
            k, v = k[..., :n_tokens, :], v[..., :n_tokens, :]
        cache.update(k, v, i)
    return cache


def select_rows(model_or_config: Any, cache: Any, rows: Sequence[int]) -> Any:
    """A cache with only the batch rows ``rows`` (e.g. the sequences still being generated)."""
    import torch

    index = torch.tensor(list(rows))
    return make_cache(model_or_config, [(k[index], v[index]) for k, v in cache_tensors(cache)])


def random_cache(
    model_or_config: Any, n_tokens: int, seed: int = 0, batch_size: int = 1, dtype: Any = None
) -> Any:
    """A cache of ``n_tokens`` random keys/values: the shape and cost of a real one.

    ``dtype``: the keys' and values' type (default float32); a bfloat16 model needs bfloat16.
    """
    import torch

    if not isinstance(n_tokens, int) or n_tokens < 1:
        raise ValueError(f"n_tokens must be an integer >= 1, got {n_tokens!r}.")
    cfg = config_of(model_or_config)
    g = torch.Generator().manual_seed(seed)
    shape = (batch_size, cfg.n_kv_head, n_tokens, cfg.head_dim)  # (B, kv_heads, T, head_dim)
    kvs = [
        (
            torch.randn(shape, generator=g).to(dtype or torch.float32),
            torch.randn(shape, generator=g).to(dtype or torch.float32),
        )
        for _ in range(cfg.n_layer)
    ]
    return make_cache(model_or_config, kvs)


def kv_cache_bytes(
    model_or_config: Any, n_tokens: int, bytes_per_value: int = 4, batch_size: int = 1
) -> int:
    """Memory of the KV cache for ``n_tokens``: 2 x layers x kv_heads x head_dim x tokens x bytes.

    ``model_or_config``: an ``LM``, a model, its config, or a ``TransformerConfig`` (e.g. a
    published config you type in). SmolLM2-135M, float32: ``kv_cache_bytes(lm, 1) -> 46080``.
    """
    if n_tokens < 0 or bytes_per_value < 1 or batch_size < 1:
        raise ValueError("n_tokens must be >= 0, bytes_per_value and batch_size >= 1.")
    cfg = config_of(model_or_config)
    return 2 * cfg.n_layer * cfg.n_kv_head * cfg.head_dim * n_tokens * bytes_per_value * batch_size
