"""Benchmark: DPO on the CPU, pairs per second, and what the frozen-pass shortcut buys.

    python benchmarks/bench_dpo.py [--pairs 16] [--repeats 3] [--top-blocks 2]

``--pairs`` of rasbt's polite/impolite pairs (chat template, SmolLM2-135M, LoRA r=8 on every
linear layer of the top ``--top-blocks`` blocks). Measured:

- the frozen pass (``llmlab.training.frozen_blocks.frozen_pass``): every pair read once through the whole
  model, no gradients: tokens/s;
- one DPO step (both answers of ``--pairs`` pairs, forward + backward + AdamW) the way
  ``train_dpo`` does it, on the stored hidden states (only the top blocks and the output head
  run): pairs/s;
- the same step through the whole model, logits at every position as trl computes them (what
  you would run without the shortcut; the reference log-probs still precomputed): pairs/s. The
  two give the same gradients (``tests/training/test_dpo.py``).

Steps are interleaved, best of ``--repeats``.
"""

from __future__ import annotations

import argparse
import time

import torch

from llmlab.runtime.models import load_lm
from llmlab.training.dpo import PreferenceSet, dpo_loss
from llmlab.training.frozen_blocks import rows_logprobs, sequence_logprobs
from llmlab.training.lora import add_lora, lora_parameters
from llmlab.training.preferences import polite_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--top-blocks", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    lm = load_lm()
    n_blocks = len(lm.model.get_decoder().layers)
    first = n_blocks - args.top_blocks
    data = PreferenceSet(lm, polite_pairs()[: args.pairs])
    frozen = data.frozen(first, progress=False)
    add_lora(lm.model, r=8, alpha=16, layers=range(first, n_blocks))
    params = lora_parameters(lm.model)
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    n = len(data)
    rows = [2 * i for i in range(n)] + [2 * i + 1 for i in range(n)]  # chosen..., rejected...
    ref = frozen.logps[rows]
    seqs = [data.sequences[i] for i in rows]
    width = max(len(s) for s in seqs)
    ids = torch.tensor([s.ids + [0] * (width - len(s)) for s in seqs])  # (2n, T)
    counted = torch.tensor([s.counted + [False] * (width - len(s)) for s in seqs])
    attention = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])

    def step(fast: bool) -> float:
        t0 = time.perf_counter()
        if fast:
            logps = rows_logprobs(lm.model, frozen, rows)  # (2n,)
        else:
            logits = lm.model(ids, attention_mask=attention).logits  # (2n, T, V)
            logps = sequence_logprobs(logits, ids, counted)
        loss = dpo_loss(logps[:n], logps[n:], ref[:n], ref[n:], 0.1)[0].mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    step(True), step(False)  # warm up
    best = {True: float("inf"), False: float("inf")}
    for _ in range(args.repeats):
        for fast in (True, False):
            best[fast] = min(best[fast], step(fast))
    tokens = sum(len(s) for s in data.sequences)
    print(
        f"SmolLM2-135M, {n} polite/impolite pairs ({tokens} tokens, both answers, chat template), "
        f"LoRA r=8 on the top {args.top_blocks} of {n_blocks} blocks, {torch.get_num_threads()} threads"
    )
    print(
        f"frozen pass (once, no gradients): {frozen.seconds:.2f} s, "
        f"{frozen.tokens / frozen.seconds:.0f} tokens/s read "
        f"({frozen.tokens} read: the shared system prompt once per batch)"
    )
    print(f"DPO step on stored hidden states: {best[True]:.2f} s, {n / best[True]:.1f} pairs/s")
    print(f"DPO step through all blocks:      {best[False]:.2f} s, {n / best[False]:.1f} pairs/s")
    print(f"the frozen-pass shortcut: {best[False] / best[True]:.1f}x faster per step")


if __name__ == "__main__":
    main()
