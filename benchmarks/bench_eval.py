"""Benchmark: scoring a multiple-choice benchmark, each option on its own vs each prompt once.

    python benchmarks/bench_eval.py [--items 50]

lm-evaluation-harness scores every (prompt, option) pair as its own sequence, so a prompt with 4
options is read 4 times. ``llmlab.evaluation.loglikelihood.batch_choice_logprobs`` reads each
prompt once, puts its options on top of its keys and values, batches items, and runs the
vocabulary head only where a token is scored. Both give the same log-probabilities (checked
here to 1e-3 on every option). Also timed: the lettered prompts with 4 greedy tokens (the
letter and HELM-style scores of ``benchmarks.ipynb`` in one pass).
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from llmlab.evaluation.benchmarks import load_wiki_mc
from llmlab.evaluation.loglikelihood import batch_choice_logprobs, continuation_logprob
from llmlab.evaluation.multiple_choice import cloze_requests, letter_requests
from llmlab.runtime.models import load_lm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=50, help="wiki-mc test items (max 200)")
    args = parser.parse_args()
    lm = load_lm()
    items = load_wiki_mc().test[: args.items]
    requests = cloze_requests(items)
    print(
        f"threads: {torch.get_num_threads()} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})"
    )
    batch_choice_logprobs(lm, requests[:4])  # warm up

    start = time.perf_counter()
    one_by_one = [[continuation_logprob(lm, c, o) for o in options] for c, options in requests]
    alone = time.perf_counter() - start

    start = time.perf_counter()
    fast = batch_choice_logprobs(lm, requests)
    batched = time.perf_counter() - start
    worst = max(
        abs(a - b)
        for row_a, row_b in zip(one_by_one, fast.logprobs, strict=True)
        for a, b in zip(row_a, row_b, strict=True)
    )
    assert worst < 1e-3, worst

    start = time.perf_counter()
    letters = batch_choice_logprobs(lm, letter_requests(items), generate=4)
    lettered = time.perf_counter() - start

    n_options = sum(len(o) for _, o in requests)
    print(f"{len(items)} wiki-mc test items, {n_options} options (cloze prompts)")
    print(
        f"each option on its own   {alone:6.1f} s  {fast.tokens_separately:6} token positions  "
        f"{fast.tokens_separately / alone:5.0f} tokens/s"
    )
    print(
        f"each prompt once, batched{batched:6.1f} s  {fast.tokens_read:6} token positions  "
        f"{fast.tokens_read / batched:5.0f} tokens/s   {alone / batched:.1f}x faster, same "
        f"numbers (largest difference {worst:.1e})"
    )
    print(
        f"lettered prompts + 4 greedy tokens: {lettered:.1f} s, {letters.tokens_read} token "
        f"positions, {letters.tokens_read / lettered:.0f} tokens/s"
    )


if __name__ == "__main__":
    main()
