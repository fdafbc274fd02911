"""The training side of byte-pair encoding (BPE): count pairs, merge the best, repeat.

Covers:
- ``get_stats``, ``merge`` and ``best_pair``: the operations BPE is made of (count neighbouring
  pairs, pick the most frequent, replace it with a new id).
- ``train_merges``: learns a merge list from pre-split chunks. Same result as the textbook loop
  ("recount all pairs, merge the best, repeat", ``BasicTokenizer.train``), but it counts each
  distinct chunk once and, after a merge, recounts only the chunks that held the pair.
- ``render_token`` (a token's bytes as readable text) and ``check_train_args``.

Leaves out: tokenizers, encoding and GPT-4's split pattern (``llmlab.tokenization.bpe``, which also re-exports
every name here, so ``from llmlab.tokenization.bpe import get_stats`` works).
"""

from __future__ import annotations

from itertools import pairwise  # pairwise([1, 2, 3]) -> (1, 2), (2, 3)
from typing import Any

Pair = tuple[int, int]


def get_stats(ids: list[int], counts: dict[Pair, int] | None = None) -> dict[Pair, int]:
    """Count each pair of neighbours: ``get_stats([1, 2, 3, 1, 2]) -> {(1, 2): 2, (2, 3): 1, (3, 1): 1}``.

    Pass ``counts`` to add to an existing tally instead of starting a new one.
    """
    counts = {} if counts is None else counts
    for pair in pairwise(ids):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge(ids: list[int], pair: Pair, idx: int) -> list[int]:
    """Replace every ``pair`` (left to right) with ``idx``: ``merge([1, 2, 3, 1, 2], (1, 2), 4) -> [4, 3, 4]``."""
    out = []
    i = 0
    while i < len(ids):
        if i < len(ids) - 1 and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(idx)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def best_pair(stats: dict[Pair, int]) -> Pair:
    """The most frequent pair; ties go to the smallest ids, so training never depends on dict order.

    ``best_pair({(256, 97): 2, (97, 98): 2, (98, 100): 1}) -> (97, 98)``
    """
    top = max(stats.values())
    return min(p for p, n in stats.items() if n == top)


def train_merges(
    chunks: list[list[int]],
    counts: list[int],
    vocab: dict[int, bytes],
    num_merges: int,
    verbose: bool = False,
) -> dict[Pair, int]:
    """Learn ``num_merges`` merges from ``chunks`` (chunk i occurs ``counts[i]`` times in the text).

    New ids follow the ids already in ``vocab``, and each new token is added to ``vocab``.
    Same result as "recount all pairs, merge the best, repeat" (the textbook loop of
    ``BasicTokenizer.train``), but after each merge only the chunks that contained the pair are
    recounted, so training on a whole book takes seconds.
    """
    first_id = len(vocab)
    stats: dict[Pair, int] = {}
    where: dict[Pair, set[int]] = {}  # pair -> indices of the chunks it occurs in
    for i, (ids, n) in enumerate(zip(chunks, counts, strict=True)):
        for pair in pairwise(ids):
            stats[pair] = stats.get(pair, 0) + n
            where.setdefault(pair, set()).add(i)

    merges: dict[Pair, int] = {}
    for k in range(num_merges):
        if not stats:
            raise ValueError(
                f"The text ran out of pairs after {k} merges (asked for {num_merges}). "
                f"Give more text or a vocab_size of at most {first_id + k}."
            )
        pair = best_pair(stats)
        idx = first_id + k
        for i in where.pop(pair):
            old = chunks[i]
            new = merge(old, pair, idx)
            if len(new) == len(old):  # pair no longer in this chunk (an earlier merge took it)
                continue
            n = counts[i]
            for p in pairwise(old):  # take the chunk's old pairs out of the tally ...
                stats[p] -= n
                if stats[p] == 0:
                    del stats[p]
            for p in pairwise(new):  # ... and put its new pairs in
                stats[p] = stats.get(p, 0) + n
                where.setdefault(p, set()).add(i)
            chunks[i] = new
        stats.pop(pair, None)
        merges[pair] = idx
        vocab[idx] = vocab[pair[0]] + vocab[pair[1]]
        if verbose:
            print(f"merge {k + 1}/{num_merges}: {pair} -> {idx} {render_token(vocab[idx])!r}")
    return merges


def render_token(b: bytes) -> str:
    """Bytes of a token as readable text; bytes that are not (yet) a whole character show as ``\\xNN``."""
    return b.decode("utf-8", errors="backslashreplace")


def check_train_args(text: Any, vocab_size: Any) -> None:
    """Raise a clear error unless ``text`` is a str and ``vocab_size`` an int >= 256."""
    if not isinstance(text, str):
        raise TypeError(f"train() needs the training text as a str, got {type(text).__name__}.")
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < 256:
        raise ValueError(
            f"vocab_size must be an int >= 256 (the 256 single bytes come first, each merge adds one), "
            f"got {vocab_size!r}."
        )
