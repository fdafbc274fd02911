"""Counting the work of generation: forward passes, the tokens each reads, the bytes of weights.

A lesson's checkpoint cannot assert a time: a busy laptop, or one with fewer threads, gives
another one. It can assert the work that was done, which is the same on every machine, and
print the time beside it. Decoding on a CPU is paced by memory: every forward pass brings every
weight from memory once (``weight_bytes``), plus each layer's cached keys and values
(``llmlab.decoding.kv_cache.cache_tensor_bytes``). So the passes and the bytes predict the time.

Covers:
- ``count_passes(model)``: a context manager recording the ``(batch, tokens)`` shape of every
  forward pass the model runs inside it (a forward pre-hook, removed on exit):

      with count_passes(lm.model) as log:
          generate(lm, "The capital of France is", max_new_tokens=3)
      log.shapes -> [(1, 5), (1, 1), (1, 1)]   # the prompt, then one new token per pass

- ``weight_bytes(model)``: the bytes of all its parameters (a tied matrix counted once).

Leaves out: FLOPs (``torch.utils.flop_counter.FlopCounterMode`` counts a pass's matrix
products; the notebooks use it directly) and memory traffic measured by hardware counters.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PassLog:
    """The forward passes counted by ``count_passes``: one ``(batch, tokens)`` shape each."""

    shapes: list[tuple[int, int]] = field(default_factory=list)

    @property
    def passes(self) -> int:
        """How many forward passes ran (each one reads every weight once)."""
        return len(self.shapes)

    @property
    def tokens(self) -> int:
        """Token positions read, summed over passes and batch rows."""
        return sum(b * t for b, t in self.shapes)


@contextmanager
def count_passes(model: Any) -> Iterator[PassLog]:
    """Record the ``(batch, tokens)`` input shape of every forward pass of ``model`` in the block."""

    def record(module: Any, args: tuple, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)  # (B, T)
        log.shapes.append((int(ids.shape[0]), int(ids.shape[1])))

    log = PassLog()
    handle = model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        yield log
    finally:
        handle.remove()


def weight_bytes(model: Any) -> int:
    """Bytes of all of ``model``'s parameters: what one forward pass reads from memory at least.

    SmolLM2-135M in float32: 134,515,008 parameters x 4 bytes = 538,060,032 bytes.
    """
    return sum(p.numel() * p.element_size() for p in model.parameters())
