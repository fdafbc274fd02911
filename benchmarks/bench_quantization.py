"""Benchmark: the bundled model in float32, bfloat16 and int8 -- memory, speed, and what it costs.

    python benchmarks/bench_quantization.py [--rounds 3]

For each copy (``llmlab.runtime.quantization.quantize``): bytes of the weights; prefill speed
(one forward pass over 32 / 128 / 512 tokens, best of ``--rounds``); decode speed at batch 1
with 128 and 512 tokens already in the cache (the Phase 2 timers,
``llmlab.decoding.context_window``); greedy decode of 8 prompts at once
(``generate_batch``, 32 new tokens each); and the price in quality on text, which no timing
shows: perplexity on 16 Wikipedia leads (128 tokens each) and how often the copy's top next
token equals float32's. The lesson (open-vs-closed.ipynb) scores the benchmark accuracy.
Run it on an otherwise idle machine: other programs only ever add time.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from llmlab.data.datasets import wiki_subset
from llmlab.decoding.batching import generate_batch
from llmlab.decoding.context_window import decode_seconds, prefill_seconds
from llmlab.runtime.models import load_lm
from llmlab.runtime.quantization import cpu_features, model_bytes, quantize

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


def text_quality(lm, enc) -> tuple[float, torch.Tensor]:
    """(perplexity on the leads, top-1 next-token ids at every real position)."""
    with torch.inference_mode():
        logits = lm.model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).logits
    logits = logits.float()[:, :-1]  # (B, T-1, V): predictions of tokens 1..T-1
    targets, mask = enc.input_ids[:, 1:], enc.attention_mask[:, 1:].bool()  # (B, T-1)
    logp = torch.log_softmax(logits, -1).gather(-1, targets[..., None])[..., 0]  # (B, T-1)
    return float(torch.exp(-logp[mask].mean())), logits.argmax(-1)[mask]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs per timing (best kept)")
    args = parser.parse_args()

    lm = load_lm()
    flags = ", ".join(k for k, v in cpu_features().items() if v) or "unknown"
    print(
        f"{lm.name}; torch threads {torch.get_num_threads()} "
        f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}); CPU flags: {flags}"
    )
    t0 = time.perf_counter()
    models = {
        "float32": lm,
        "bfloat16": quantize(lm, "bfloat16"),
        "int8": quantize(lm, "int8"),
        "int8, down_proj fp32": quantize(lm, "int8", keep=("down_proj",)),
    }
    print(f"three quantised copies made in {time.perf_counter() - t0:.1f} s\n")

    texts = [a.extract for a in wiki_subset(16, seed=1)]
    enc = lm.tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=128)
    sizes, contexts = [32, 128, 512], [128, 512]
    base = model_bytes(lm)
    header = (
        f"{'':<22} {'MB':>5}  "
        + "  ".join(f"prefill {n:>3}" for n in sizes)
        + "  "
        + "  ".join(f"decode@{n:<3}" for n in contexts)
        + "  batch 8   ppl   same top-1"
    )
    print("tokens/s (best of", args.rounds, "runs)")
    print(header)
    reference_top = None
    for name, m in models.items():
        prefill = prefill_seconds(m, sizes, rounds=args.rounds)
        decode = decode_seconds(m, contexts, rounds=args.rounds)
        t0 = time.perf_counter()
        gens = generate_batch(m, PROMPTS, max_new_tokens=32)
        batch_rate = sum(len(g.token_ids) for g in gens) / (time.perf_counter() - t0)
        ppl, top = text_quality(m, enc)
        reference_top = top if reference_top is None else reference_top
        same = float((top == reference_top).float().mean())
        print(
            f"{name:<22} {model_bytes(m) / 1e6:5.0f}  "
            + "  ".join(f"{n / s:11.0f}" for n, s in zip(sizes, prefill, strict=True))
            + "  "
            + "  ".join(f"{1 / s:10.1f}" for s in decode)
            + f"  {batch_rate:7.1f}  {ppl:5.1f}  {same:9.1%}"
        )
    print(
        f"\nmemory relative to float32 ({base / 1e6:.0f} MB): "
        + ", ".join(f"{k} {model_bytes(m) / base:.0%}" for k, m in models.items())
    )


if __name__ == "__main__":
    main()
