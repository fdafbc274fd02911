"""Benchmark: LoRA training throughput on the CPU, llmlab's hand-written LoRA vs peft.

    python benchmarks/bench_training.py [--repeats 3] [--batch 8] [--tokens 64]

One training step (forward, backward, AdamW) of SmolLM2-135M on the same batch of random
tokens (``--batch`` rows x ``--tokens`` tokens, the last quarter of each row counted by the
loss, as an answer after its prompt), with LoRA r=8 on every linear layer of every block:
``llmlab.training.lora`` vs ``peft`` (the same loss function, ``llmlab.training.sft.batch_loss``,
for both). Runs are interleaved, best of ``--repeats`` (a busy neighbour slows every contender).
Printed: seconds per step and tokens/s for each, the ratio hand / peft (goal: >= 0.9x), and
what cheaper settings buy: LoRA on the top 8 blocks only, and the loss on every token (the
output head then runs at every position).
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from llmlab.runtime.models import load_lm
from llmlab.training.lora import ALL_LINEAR, add_lora, lora_parameters
from llmlab.training.sft import Batch, batch_loss


def step_seconds(model, params, batch: Batch) -> float:
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    t0 = time.perf_counter()
    loss = batch_loss(model, batch)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    import peft

    torch.manual_seed(0)
    lm = load_lm()
    n_blocks = len(lm.model.get_decoder().layers)
    b, t = args.batch, args.tokens
    ids = torch.randint(100, 40_000, (b, t))  # (B, T)
    counted = torch.zeros(b, t, dtype=torch.bool)
    counted[:, -t // 4 :] = True  # the answer: the last quarter of each row
    answer_only = Batch(ids=ids, attention=torch.ones(b, t, dtype=torch.long), counted=counted)
    every_token = Batch(ids=ids, attention=answer_only.attention, counted=torch.ones_like(counted))

    ours = copy.deepcopy(lm.model)
    add_lora(ours, r=8, alpha=16)
    config = peft.LoraConfig(r=8, lora_alpha=16, target_modules=list(ALL_LINEAR))
    theirs = peft.get_peft_model(copy.deepcopy(lm.model), config).base_model.model
    top = copy.deepcopy(lm.model)
    add_lora(top, r=8, alpha=16, layers=range(n_blocks - 8, n_blocks))
    contenders = {
        "llmlab LoRA, all blocks": (ours, lora_parameters(ours), answer_only),
        "peft LoRA, all blocks": (
            theirs,
            [p for p in theirs.parameters() if p.requires_grad],
            answer_only,
        ),
        "llmlab LoRA, top 8 blocks": (top, lora_parameters(top), answer_only),
        "llmlab LoRA, loss on every token": (ours, lora_parameters(ours), every_token),
    }
    for model, params, batch in contenders.values():  # warm up
        step_seconds(model, params, batch)
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(args.repeats):
        for name, (model, params, batch) in contenders.items():
            best[name] = min(best[name], step_seconds(model, params, batch))
    n_tokens = b * t
    print(
        f"SmolLM2-135M, LoRA r=8 on {len(ALL_LINEAR)} linear layers per block, one step of "
        f"{b} x {t} tokens (loss on the last {t // 4} of each row), "
        f"{torch.get_num_threads()} threads, best of {args.repeats}"
    )
    for name, seconds in best.items():
        print(f"  {name:<34} {seconds:6.2f} s/step  {n_tokens / seconds:6.0f} tokens/s")
    ratio = best["peft LoRA, all blocks"] / best["llmlab LoRA, all blocks"]
    print(f"  hand-written / peft throughput: {ratio:.2f}x   (goal >= 0.9x)")


if __name__ == "__main__":
    main()
