"""How long do the models take to load? Prints figures; asserts nothing.

Each measurement runs in a fresh Python process, as a learner's notebook kernel would:
- import: `import torch, transformers` + transformers' Llama/tokenizer code (paid by any program
  that uses a transformers model, cached or not);
- warm load: `llmlab.load_lm()` reading the float32 cache (the target: under 3 s);
- cold load: `llmlab.load_lm()` with an empty cache dir: dequantize the GGUF + write the cache;
- embedder and tokenizer loads for comparison.

Run: `.venv/bin/python benchmarks/bench_models.py [--repeat 3] [--cold]`
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

PROBE = r"""
import json, os, sys, time
t0 = time.perf_counter()
import torch, transformers
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast  # noqa: F401 (import cost)
t1 = time.perf_counter()
import llmlab
what = sys.argv[1]
if what == "lm":
    llmlab.load_lm()
elif what == "embedder":
    llmlab.load_embedder()
else:
    llmlab.load_tokenizer()
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1}))
"""


def run(what: str, env: dict | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, what],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--cold", action="store_true", help="also time a first load into an empty cache"
    )
    args = ap.parse_args()
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores")
    run("lm")  # make sure the cache exists before timing warm loads
    for what in ["lm", "embedder", "tokenizer"]:
        rows = [run(what) for _ in range(args.repeat)]
        imp = statistics.median(r["import_s"] for r in rows)
        load = statistics.median(r["load_s"] for r in rows)
        print(
            f"{what:<10} warm load {load:6.2f} s  (median of {args.repeat}; "
            f"importing torch+transformers first: {imp:.2f} s)"
        )
    if args.cold:
        with tempfile.TemporaryDirectory() as tmp:
            r = run("lm", {"LLMLAB_CACHE": tmp})
        print(f"lm         cold load {r['load_s']:6.2f} s  (dequantize GGUF + write cache)")


if __name__ == "__main__":
    main()
