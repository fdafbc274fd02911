"""Benchmark: tokens/s of llmlab's generation loop vs transformers' `generate`, and without a KV cache.

    python benchmarks/bench_generation.py [--tokens 64] [--repeats 3]

All runs are greedy on the same prompt for the same number of new tokens, and are checked to
produce the same tokens. Runs are interleaved and the best of ``--repeats`` is reported, so a
busy neighbour on the machine disturbs every contender alike. Goal: llmlab / transformers >= 0.8.
``fast_generate`` (the plain loop's optimised twin, with none of its extras on) runs alongside:
the same tokens, and it should cost the same.
The last part repeats the cache/no-cache comparison with a long prompt, where re-reading the
past every step costs the most.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from llmlab.decoding.chat_template import encode_prompt
from llmlab.decoding.fast_generation import fast_generate
from llmlab.decoding.generation import generate
from llmlab.runtime.models import load_lm

PROMPT = "Once upon a time, in a small village by the sea, there lived"
LONG_PROMPT = " ".join(
    f"Note {i}: the meeting about the harbour lights moved to room {i % 7}." for i in range(20)
)


def hf_generate(lm, ids: list[int], n: int) -> list[int]:
    x = torch.tensor([ids])  # (1, T)
    with torch.inference_mode():
        out = lm.model.generate(
            x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=n
        )
    return out[0, len(ids) :].tolist()


def best_rate(fn, repeats: int = 1) -> tuple[float, list[int]]:
    """Best tokens/s over `repeats` runs of fn() -> token ids."""
    best, ids = 0.0, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ids = fn()
        dt = time.perf_counter() - t0
        best = max(best, len(ids) / dt)
    return best, ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per run (default 64)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per contender (best kept)")
    args = parser.parse_args()
    n = args.tokens

    lm = load_lm()
    ids = encode_prompt(lm, PROMPT)
    print(
        f"{lm.name}, torch threads: {torch.get_num_threads()} "
        f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})"
    )
    print(f"prompt: {len(ids)} tokens, {n} new tokens, greedy, best of {args.repeats}\n")
    generate(lm, ids, max_new_tokens=4)  # warm up
    hf_generate(lm, ids, 4)

    ours = hf = twin = 0.0
    ours_ids = hf_ids = twin_ids = []
    for _ in range(args.repeats):  # interleave so all see the same machine load
        r, ours_ids = best_rate(lambda: generate(lm, ids, max_new_tokens=n).token_ids)
        ours = max(ours, r)
        r, hf_ids = best_rate(lambda: hf_generate(lm, ids, n))
        hf = max(hf, r)
        r, twin_ids = best_rate(lambda: fast_generate(lm, ids, max_new_tokens=n).token_ids)
        twin = max(twin, r)
    assert ours_ids == hf_ids == twin_ids, "llmlab, its twin and transformers disagree"
    no_cache, nc_ids = best_rate(
        lambda: generate(lm, ids, max_new_tokens=n, use_cache=False).token_ids,
    )
    assert nc_ids == ours_ids
    print(f"llmlab generate (KV cache)     {ours:7.1f} tokens/s")
    print(f"llmlab fast_generate (twin)    {twin:7.1f} tokens/s")
    print(f"transformers generate          {hf:7.1f} tokens/s")
    print(f"llmlab generate (no KV cache)  {no_cache:7.1f} tokens/s")
    print(f"ratio llmlab / transformers    {ours / hf:7.2f}   (goal >= 0.8)")
    print(f"KV-cache speed-up              {ours / no_cache:7.2f}x")

    long_ids = encode_prompt(lm, LONG_PROMPT)
    m = max(8, n // 4)
    cached, a = best_rate(lambda: generate(lm, long_ids, max_new_tokens=m).token_ids)
    uncached, b = best_rate(
        lambda: generate(lm, long_ids, max_new_tokens=m, use_cache=False).token_ids,
    )
    assert a == b
    print(f"\nlong prompt: {len(long_ids)} tokens, {m} new tokens")
    print(f"llmlab generate (KV cache)     {cached:7.1f} tokens/s")
    print(f"llmlab generate (no KV cache)  {uncached:7.1f} tokens/s")
    print(f"KV-cache speed-up              {cached / uncached:7.2f}x")


if __name__ == "__main__":
    main()
