"""Benchmark: tokens/s of ``generate_batch`` on 16 prompts vs ``generate`` one prompt at a time.

    python benchmarks/bench_batch.py [--tokens 32] [--prompts 16]

Decoding on a CPU is memory-bound: each step reads every weight once, whether it computes one
row or sixteen, so a batch of 16 costs little more per step than one prompt. Both runs are
greedy and checked to produce identical tokens. Goal (issue 10): >= 5x on 16 prompts, 2 cores.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from llmlab.decoding.batching import generate_batch
from llmlab.decoding.generation import generate
from llmlab.runtime.models import load_lm

TOPICS = [
    "the sea",
    "bread",
    "Python",
    "bicycles",
    "the moon",
    "coffee",
    "trains",
    "music",
    "rain",
    "chess",
    "maps",
    "bees",
    "glass",
    "paper",
    "salt",
    "clocks",
]


def prompts(n: int) -> list[str]:
    """n prompts of different lengths (so the batch really is left-padded)."""
    return [
        f"Write {i % 4 + 1} short facts about {TOPICS[i % len(TOPICS)]}:" + " Please." * (i % 5)
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per prompt (default 32)")
    parser.add_argument("--prompts", type=int, default=16, help="prompts (default 16)")
    args = parser.parse_args()
    lm = load_lm()
    ps = prompts(args.prompts)
    print(
        f"{lm.name}; torch threads {torch.get_num_threads()} "
        f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}); "
        f"{len(ps)} prompts, {args.tokens} new tokens each, greedy\n"
    )
    generate(lm, ps[0], max_new_tokens=2)  # warm up
    generate_batch(lm, ps[:2], max_new_tokens=2)

    t0 = time.perf_counter()
    one = [generate(lm, p, max_new_tokens=args.tokens, n_candidates=1).token_ids for p in ps]
    t_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    batch = [g.token_ids for g in generate_batch(lm, ps, max_new_tokens=args.tokens)]
    t_batch = time.perf_counter() - t0
    assert batch == one, "batched greedy output differs from one-at-a-time"
    n_tokens = sum(map(len, one))
    print(f"one at a time   {n_tokens / t_one:7.1f} tokens/s  ({t_one:5.1f} s)")
    print(f"generate_batch  {n_tokens / t_batch:7.1f} tokens/s  ({t_batch:5.1f} s)")
    print(f"speed-up        {t_one / t_batch:7.1f}x   (goal >= 5x)   identical tokens: yes")


if __name__ == "__main__":
    main()
