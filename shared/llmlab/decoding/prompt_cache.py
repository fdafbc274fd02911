"""Prompt caching: reuse the KV cache of a prompt prefix the model has already read.

An agent re-sends the whole conversation at every step: the system prompt with its tool list,
then every earlier call and result. Step k+1's prompt is step k's prompt plus two new turns, so
all but the new turns were read last time. Providers bill such a repeated prefix as "cached input"
at a discount for exactly this reason: they keep its keys and values (Phase 2's KV cache) and only
read what is new. ``PromptCache`` does the same for the local model:

    cache = PromptCache()
    chat = LocalChat(lm, prompt_cache=cache)     # every call now looks up and stores prompts
    ...; print(cache.stats())                    # tokens read vs tokens reused

``lookup`` finds the stored prompt sharing the longest prefix with a new prompt and returns a cache
holding that prefix; ``fast_generate`` then feeds only the rest. ``store`` keeps a prompt's cache right
after it was read (before any answer token). Stored tensors are shared, not copied: generation
appends with ``torch.cat``, which makes new tensors, so a stored entry never changes.

Leaves out: batches (one prompt at a time), eviction by memory size (a fixed number of entries,
least recently used first), and bit-identical results: reading a prompt in two pieces instead of
one adds float rounding differences (~1e-6), which can flip a near-tie in greedy decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmlab.decoding.kv_cache import cache_tensors, make_cache


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading token ids ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@dataclass
class CacheStats:
    """Prompt tokens the model read vs took from the cache (what a provider bills as cached)."""

    lookups: int = 0
    prompt_tokens: int = 0
    reused_tokens: int = 0

    @property
    def read_tokens(self) -> int:
        return self.prompt_tokens - self.reused_tokens


class PromptCache:
    """The KV caches of the last ``max_entries`` prompts, looked up by longest shared prefix."""

    def __init__(self, max_entries: int = 8, min_reuse: int = 16) -> None:
        if not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries must be an integer >= 1, got {max_entries!r}.")
        self.max_entries, self.min_reuse = max_entries, min_reuse
        self.entries: list[tuple[list[int], list]] = []  # (prompt ids, per-layer (keys, values))
        self.stats = CacheStats()

    def lookup(self, model: Any, ids: Sequence[int]) -> tuple[int, Any]:
        """``(n, cache)``: a cache holding the first ``n`` of ``ids`` (``(0, None)`` on a miss).

        At least one token is always left to read: the model needs it to score the next token.
        """
        best, kvs = 0, None
        for i, (stored, layers) in enumerate(self.entries):
            n = min(common_prefix(stored, ids), len(ids) - 1)
            if n > best:
                best, kvs, hit = n, layers, i
        self.stats.lookups += 1
        self.stats.prompt_tokens += len(ids)
        if kvs is None or best < self.min_reuse:  # a short match is not worth a cache copy
            return 0, None
        self.entries.append(self.entries.pop(hit))  # most recently used last
        self.stats.reused_tokens += best
        return best, make_cache(model, kvs, best)  # keys/values shared, cut to the prefix

    def store(self, ids: Sequence[int], cache: Any) -> None:
        """Keep ``cache`` (which holds exactly ``ids``) for later prompts that start the same way."""
        self.entries = [e for e in self.entries if e[0] != list(ids)]
        self.entries.append((list(ids), cache_tensors(cache)))
        del self.entries[: -self.max_entries]  # least recently used go first

    def clear(self) -> None:
        self.entries.clear()
        self.stats = CacheStats()
