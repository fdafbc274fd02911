"""Benchmark: llmlab's thread policy vs torch's default, on an idle machine and with one core busy.

    python benchmarks/bench_threads.py [--tokens 32] [--repeats 2]

torch runs every forward pass on one thread per core; when another program holds a core, the
thread sharing it is slow and every step waits for it. llmlab's policy (``llmlab.runtime.threads``)
gives each forward pass only the cores nobody else is keeping busy (all of them when idle). This prints greedy decoding speed for one prompt (batch 1) and for eight
prompts at once (batch 8), before (torch default) and after (llmlab policy), first idle, then
while a spinning subprocess that this script starts and stops keeps one core busy.
Goal (issue 9): with one core busy, generation stays within 1.5x of its idle speed.
Run it on an otherwise idle machine, without OMP_NUM_THREADS / LLMLAB_THREADS set.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from contextlib import contextmanager

import torch

from llmlab.decoding.batching import generate_batch
from llmlab.decoding.generation import generate
from llmlab.runtime.models import load_lm
from llmlab.runtime.threads import LOAD_WINDOW, busy_cores, policy_enabled, thread_cap

PROMPTS = [
    "Once upon a time, in a small village by the sea, there lived",
    "The three most important things about Python are",
    "def fibonacci(n):",
    "My favourite fruit is",
    "The history of the bicycle begins",
    "A good night's sleep",
    "To make bread you need",
    "The capital of France is",
]


@contextmanager
def one_core_busy(busy: bool):
    """Keep one core busy with a spinning Python process for the duration of the block."""
    if not busy:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let it start spinning
        yield
    finally:
        spinner.kill()
        spinner.wait()


def rate(fn, repeats: int) -> float:
    """Best new tokens per second over ``repeats`` runs of fn() -> number of new tokens."""
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = fn()
        best = max(best, n / (time.perf_counter() - t0))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per prompt (default 32)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per cell (best kept)")
    args = parser.parse_args()
    n = args.tokens

    lm = load_lm()
    env = {v: os.environ.get(v, "unset") for v in ("OMP_NUM_THREADS", "LLMLAB_THREADS")}
    print(
        f"{lm.name}; {os.cpu_count()} CPUs; torch default threads {torch.get_num_threads()}; "
        f"llmlab cap {thread_cap()}; {env}"
    )
    busy_cores()
    time.sleep(4 * LOAD_WINDOW)
    others = busy_cores()
    print(f"greedy, {n} new tokens per prompt, best of {args.repeats}; tokens/s")
    print(
        f"other programs keep {others:.1f} cores busy now"
        + ("  (NOT idle: the 'idle' rows below are not idle)" if others > 0.3 else "")
        + "\n"
    )

    def batch1() -> int:
        return len(generate(lm, PROMPTS[0], max_new_tokens=n, n_candidates=1).token_ids)

    def batch8() -> int:
        return sum(len(g.token_ids) for g in generate_batch(lm, PROMPTS, max_new_tokens=n))

    batch1(), batch8()  # warm up
    results = {}
    for busy in (False, True):
        with one_core_busy(busy):
            for policy in (False, True):
                with policy_enabled(policy):
                    results[busy, policy] = (rate(batch1, args.repeats), rate(batch8, args.repeats))

    print(f"{'':34}{'batch 1':>10}{'batch 8':>10}")
    for busy in (False, True):
        for policy in (False, True):
            label = f"{'one core busy' if busy else 'idle':<14} {'llmlab policy' if policy else 'torch default':<18}"
            b1, b8 = results[busy, policy]
            print(f"{label} {b1:9.1f} {b8:9.1f}")
    for policy in (False, True):
        idle, busy = results[False, policy], results[True, policy]
        name = "llmlab policy" if policy else "torch default"
        print(
            f"\n{name}: idle / busy = {idle[0] / busy[0]:.2f}x (batch 1), "
            f"{idle[1] / busy[1]:.2f}x (batch 8)   (goal <= 1.5x)"
        )


if __name__ == "__main__":
    main()
