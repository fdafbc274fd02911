"""Benchmark: our from-scratch GPT-4 encoder vs tiktoken, and BPE training time.

    .venv/bin/python benchmarks/bench_tokenization.py

Corpus: English prose that ships with Python, the reference-manual text in ``pydoc_data.topics``
(PSF licence, ~466 KB), plus the STS-B test sentences (``llmlab.data.datasets.load_stsb``, CC BY-SA).

The chunk cache would flatter repeated text (the second copy of a text is pure look-ups), so:
- "cold": the cache is emptied before every pass, and each pass is one copy of the corpus;
  passes are repeated until at least --min-mb megabytes have been encoded.
- "warm": a pass right after a cold one, all chunks cached (the best case: lots of similar text).
tiktoken encodes the same passes, single-threaded (``encode_ordinary``). The contenders take turns
pass by pass and each one's fastest pass is reported (like timeit), so a busy machine slows them
alike: ``llmlab.tokenization.tokens.encoding_speeds``, the same measurement the bpe-from-scratch notebook makes.
MB = 10**6 bytes of UTF-8.
Goal: the from-scratch encoder reaches at least 5% of tiktoken's throughput on English prose.
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from pydoc_data import topics

import llmlab
from llmlab.data.datasets import load_stsb
from llmlab.tokenization.bpe import BasicTokenizer, RegexTokenizer
from llmlab.tokenization.tokens import encoding_speeds


def corpora() -> dict[str, str]:
    sentences = [s for pair in load_stsb() for s in (pair.sentence1, pair.sentence2)]
    return {
        "pydoc topics": "\n\n".join(topics.topics.values()),
        "STS-B sentences": "\n".join(sentences),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--min-mb", type=float, default=1.0, help="encode at least this much per measurement"
    )
    parser.add_argument(
        "--vocab", type=int, default=1024, help="vocab size for the training benchmark"
    )
    args = parser.parse_args(argv)

    print(
        f"Python {platform.python_version()} on {platform.machine()}, {platform.processor() or 'cpu'}"
    )
    enc = llmlab.load_tokenizer("cl100k_base")
    t0 = time.perf_counter()
    ours = RegexTokenizer.from_tiktoken(enc)
    print(
        f"RegexTokenizer.from_tiktoken(cl100k_base): {time.perf_counter() - t0:.2f} s "
        f"({len(ours.merges):,} merges recovered)\n"
    )

    ok = True
    for name, text in corpora().items():
        size = len(text.encode("utf-8"))
        passes = max(1, math.ceil(args.min_mb * 1e6 / size))
        same = ours.encode_ordinary(text) == enc.encode_ordinary(text)
        ours.clear_cache()
        n_chunks, n_distinct = len(ours.split(text)), len(set(ours.split(text)))
        print(
            f"== {name}: {size / 1e3:,.0f} KB x {passes} passes = {size * passes / 1e6:.2f} MB; "
            f"{n_chunks:,} chunks, {n_distinct:,} distinct; ids identical to tiktoken: {same}"
        )
        ok &= same
        speeds = encoding_speeds(ours, text, reference=enc, repeat=passes)  # MB/s, best pass
        tk, cold, warm, split = (speeds[k] for k in ("reference", "cold", "warm", "split"))
        print(f"  tiktoken (Rust, 1 thread)       {tk:7.2f} MB/s")
        print(
            f"  from scratch, cold cache        {cold:7.2f} MB/s   = {cold / tk:6.1%} of tiktoken"
        )
        print(
            f"  from scratch, warm cache        {warm:7.2f} MB/s   = {warm / tk:6.1%} of tiktoken"
        )
        print(
            f"  (regex pre-split alone          {split:7.2f} MB/s: the floor for any Python-side encoder)"
        )
        goal = cold / tk >= 0.05
        ok &= goal
        print(f"  goal >= 5% of tiktoken (cold): {'PASS' if goal else 'FAIL'}\n")

    # Training: the regex trainer on the whole manual, then both trainers on its first 100 KB.
    # Compression (bytes per token) is measured on the manual's last 20 KB, which no run trained on.
    text = corpora()["pydoc topics"]
    small, heldout = text[:100_000], text[-20_000:]
    runs = [
        (RegexTokenizer, text[:-20_000], args.vocab),
        (RegexTokenizer, small, 512),
        (BasicTokenizer, small, 512),
    ]
    for cls, corpus, vocab in runs:
        tok = cls()
        t0 = time.perf_counter()
        tok.train(corpus, vocab)
        dt = time.perf_counter() - t0
        size = len(corpus.encode("utf-8"))
        ratio = len(heldout.encode("utf-8")) / len(tok.encode(heldout))
        print(
            f"train {cls.__name__:>14}: {size / 1e3:5,.0f} KB of pydoc topics, vocab {vocab:5} "
            f"({vocab - 256:4} merges): {dt:6.2f} s; {ratio:.2f} bytes/token on 20 KB held out"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
