"""The sampling knobs: how one next-token distribution becomes the dice a token is drawn with.

Covers:
- ``apply_temperature``: ``softmax(logits / T)``; T = 0 puts all the mass on the argmax (greedy).
- ``filter_top_k``, ``filter_top_p``, ``filter_min_p``: each returns a *mask* of the tokens it
  keeps (so a picture can grey out the ones it cuts); ``renormalize`` rescales the kept ones.
- ``sampling_distribution``: the one pipeline every llmlab sampler uses: temperature, then
  top-k, top-p, min-p, then renormalize.
- ``apply_penalties``: repetition (transformers style) and frequency/presence (OpenAI style).
- ``random_stream``: a private, seedable ``torch.Generator`` (the dice; torch's global seed is
  never touched). ``entropy`` in bits.
- ``check_settings``: the one place that says which settings are valid.

Everything works on one distribution ``(V,)`` or a batch of them ``(B, V)``. ``top_k=0`` and
``None`` both mean "no top-k filter", as in transformers and the explorer's slider.

Leaves out: the model (``llmlab.decoding.generation`` calls it), typical/eta sampling, beam search.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def _as_tensor(x: Any) -> torch.Tensor:
    import torch

    return torch.as_tensor(x, dtype=torch.float32)


def apply_temperature(logits: Any, temperature: float) -> torch.Tensor:
    """Probabilities ``softmax(logits / temperature)``; temperature 0 puts all mass on the argmax.

    ``apply_temperature([2.0, 1.0, 0.0], 1.0) -> [0.665, 0.245, 0.090]``;
    at 0.5 -> ``[0.867, 0.117, 0.016]`` (sharper); at 2.0 -> ``[0.506, 0.307, 0.186]`` (flatter).
    """
    import torch

    _check_temperature(temperature)
    logits = _as_tensor(logits)  # (..., V)
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    return torch.softmax(logits / temperature, dim=-1)


def filter_top_k(probs: Any, k: int) -> torch.Tensor:
    """Mask keeping the ``k`` most likely tokens (``k=0``: keep all).

    ``filter_top_k([.5, .3, .2], 2) -> [True, True, False]``.
    """
    import torch

    _check_top_k(k)
    probs = _as_tensor(probs)  # (..., V)
    if k == 0 or k >= probs.shape[-1]:
        return torch.ones_like(probs, dtype=torch.bool)
    keep = torch.zeros_like(probs, dtype=torch.bool)
    keep.scatter_(-1, torch.topk(probs, k, dim=-1).indices, True)
    return keep


def filter_top_p(probs: Any, p: float) -> torch.Tensor:
    """Mask keeping the smallest set of most likely tokens whose total probability reaches ``p``.

    ``filter_top_p([.5, .3, .2], 0.7) -> [True, True, False]`` (0.5 < 0.7, 0.5 + 0.3 >= 0.7).
    """
    import torch

    _check_top_p(p)
    probs = _as_tensor(probs)  # (..., V)
    if p >= 1.0:
        return torch.ones_like(probs, dtype=torch.bool)
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True, stable=True)
    mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # mass of the tokens ahead
    keep_sorted = mass_before < p  # keep a token while the set before it is still short of p
    keep_sorted[..., 0] = True  # the most likely token always survives
    keep = torch.zeros_like(keep_sorted)
    keep.scatter_(-1, order, keep_sorted)
    return keep


def filter_min_p(probs: Any, min_p: float) -> torch.Tensor:
    """Mask keeping tokens at least ``min_p`` times as likely as the top one.

    ``filter_min_p([.5, .3, .2], 0.5) -> [True, True, False]`` (threshold 0.5 * 0.5 = 0.25).
    """
    _check_min_p(min_p)
    probs = _as_tensor(probs)  # (..., V)
    return probs >= min_p * probs.max(dim=-1, keepdim=True).values


def renormalize(probs: Any, keep: Any) -> torch.Tensor:
    """Zero the cut tokens and rescale the kept ones to sum to 1."""
    probs = _as_tensor(probs) * _as_tensor(keep)
    return probs / probs.sum(dim=-1, keepdim=True)


def entropy(probs: Any) -> float:
    """Entropy in bits: 0 = certain, log2(n) = a fair pick among n. ``entropy([.5, .5]) -> 1.0``."""
    return float(entropies(probs))


def entropies(probs: Any) -> torch.Tensor:
    """Entropy in bits of each row of ``probs`` ``(..., V)`` -> ``(...)``, in one vectorised pass."""
    import math

    import torch

    return torch.special.entr(_as_tensor(probs)).sum(dim=-1) / math.log(2)  # entr(0) = 0


def sampling_distribution(
    logits: Any,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
) -> torch.Tensor:
    """The distribution a token is drawn from: temperature first, then top-k, top-p, min-p.

    ``logits`` may be ``(V,)`` or a batch ``(B, V)``; the result has the same shape.
    """
    check_settings(temperature, top_k, top_p, min_p)
    probs = apply_temperature(logits, temperature)  # (..., V)
    keep = probs > 0
    if top_k:
        keep &= filter_top_k(probs, top_k)
    if top_p is not None:
        keep &= filter_top_p(probs, top_p)
    if min_p is not None:
        keep &= filter_min_p(probs, min_p)
    return renormalize(probs, keep)


def apply_penalties(
    logits: torch.Tensor,
    context_ids: Sequence[int],
    generated_ids: Sequence[int],
    repetition_penalty: float | None = None,
    frequency_penalty: float = 0.0,
    presence_penalty: float = 0.0,
) -> torch.Tensor:
    """Push down tokens already used, on one distribution ``(V,)`` (returns new logits).

    ``repetition_penalty`` (transformers style, > 1 penalizes): every token of prompt + output has
    its logit divided by it (multiplied if negative). ``frequency_penalty`` / ``presence_penalty``
    (OpenAI style): subtract ``count * frequency + (count > 0) * presence`` for generated tokens.
    """
    import torch

    logits = logits.clone()  # (V,)
    if repetition_penalty is not None and repetition_penalty != 1.0 and context_ids:
        seen = torch.tensor(sorted(set(context_ids)))
        score = logits[seen]
        logits[seen] = torch.where(
            score > 0, score / repetition_penalty, score * repetition_penalty
        )
    if (frequency_penalty or presence_penalty) and generated_ids:
        counts = torch.bincount(torch.tensor(list(generated_ids)), minlength=logits.shape[-1])
        logits -= frequency_penalty * counts + presence_penalty * (counts > 0)
    return logits


def random_stream(seed: int | None = None) -> torch.Generator:
    """Our own random stream: a seed makes it repeatable, and torch's global seed is untouched."""
    import torch

    rng = torch.Generator()
    if seed is not None:
        rng.manual_seed(seed)
    else:
        rng.seed()
    return rng


# --- the one settings check -------------------------------------------------------------------


def check_settings(
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    max_new_tokens: int = 1,
    repetition_penalty: float | None = None,
    frequency_penalty: float = 0.0,
    presence_penalty: float = 0.0,
) -> None:
    """Raise ``ValueError`` naming the valid range if any generation setting is out of range."""
    _check_temperature(temperature)
    if top_k is not None:
        _check_top_k(top_k)
    if top_p is not None:
        _check_top_p(top_p)
    if min_p is not None:
        _check_min_p(min_p)
    if not isinstance(max_new_tokens, numbers.Integral) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}.")
    if repetition_penalty is not None and not (
        _is_number(repetition_penalty) and repetition_penalty > 0
    ):
        raise ValueError(
            "repetition_penalty must be > 0 (1.0 = off, 1.1-1.3 typical), "
            f"got {repetition_penalty!r}."
        )
    for name, value in (
        ("frequency_penalty", frequency_penalty),
        ("presence_penalty", presence_penalty),
    ):
        if not _is_number(value) or not -2 <= value <= 2:
            raise ValueError(f"{name} must be in [-2, 2] (0 = off), got {value!r}.")


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and not math.isnan(x)


def _check_temperature(t: float) -> None:
    if not _is_number(t) or t < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy, 1 = the model's own), got {t!r}.")


def _check_top_k(k: int) -> None:
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 0:
        raise ValueError(f"top_k must be an integer >= 0 (0 = off), got {k!r}.")


def _check_top_p(p: float) -> None:
    if not _is_number(p) or not 0 < p <= 1:
        raise ValueError(f"top_p must be in (0, 1] (1 = keep everything), got {p!r}.")


def _check_min_p(p: float) -> None:
    if not _is_number(p) or not 0 <= p < 1:
        raise ValueError(f"min_p must be in [0, 1) (0 = keep everything), got {p!r}.")
