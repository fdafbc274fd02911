"""``llmlab explore "prompt"``: generate step by step, printing each step's top candidates.

Bad input -- a blank prompt, a setting out of range, ``--steps`` beyond the context window, an
unknown model -- is one line on stderr naming the flag to change, exit code 2, no traceback.
``--top-k 0`` means "off", as on the explorer's slider; ``--show`` is capped at ``MAX_SHOW``.
"""

from __future__ import annotations

import argparse
import sys

from llmlab.cli.errors import ArgumentParser, CliError, run
from llmlab.cli.tune import adapted_lm, add_adapter_option

MAX_SHOW = 20  # candidates per step: more is a wall of text, not a picture

# library parameter -> the flag the learner typed, so error messages name what they can change
FLAGS = {
    "max_new_tokens": "--steps",
    "n_candidates": "--show",
    "top_k": "--top-k",
    "top_p": "--top-p",
    "min_p": "--min-p",
    "temperature": "--temperature",
}


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="llmlab explore",
        description="Step through generation with the bundled SmolLM2, showing each token's "
        "top candidates and their probabilities.",
    )
    p.add_argument("prompt", help="the text to continue")
    p.add_argument("--steps", type=int, default=8, help="tokens to generate (default 8)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-k", type=int, default=None, help="keep the K most likely (0 = off)")
    p.add_argument("--top-p", type=float, default=None, help="keep the smallest set with mass P")
    p.add_argument("--min-p", type=float, default=None, help="keep tokens >= P x the top one")
    p.add_argument("--seed", type=int, default=None, help="fix the dice (same seed, same text)")
    p.add_argument("--chat", action="store_true", help="wrap the prompt in the chat template")
    p.add_argument(
        "--show", type=int, default=5, help=f"candidates shown per step (default 5, max {MAX_SHOW})"
    )
    p.add_argument("--model", default=None, help="model name (default: bundled SmolLM2)")
    add_adapter_option(p)
    return p


def _explore(argv: list[str] | None) -> int:
    from llmlab.decoding.sampling import check_settings

    args = _parser().parse_args(argv)
    if not args.prompt.strip():
        raise CliError(
            'the prompt is empty: give some text to continue, e.g. "The capital of France is"'
        )
    top_k = args.top_k or None  # 0 = off, as on the explorer's slider
    check_settings(args.temperature, top_k, args.top_p, args.min_p, args.steps)
    if args.show < 1:
        raise CliError(f"--show must be an integer >= 1, got {args.show}")
    show = min(args.show, MAX_SHOW)
    if show < args.show:
        print(f"llmlab explore: --show capped at {MAX_SHOW} candidates per step", file=sys.stderr)

    from transformers.utils import logging as hf_logging

    from llmlab.decoding.chat_template import encode_prompt
    from llmlab.decoding.generation import generate
    from llmlab.runtime.models import load_lm
    from llmlab.views.terminal import format_step

    hf_logging.disable_progress_bar()  # no "Loading weights" bars between the learner and the answer
    # only now: the checks above cost nothing, loading costs seconds
    lm = adapted_lm(args.adapter, args.model) or load_lm(args.model)
    n_prompt, limit = len(encode_prompt(lm, args.prompt, chat=args.chat)), lm.context_length
    if n_prompt >= limit:
        raise CliError(
            f"the prompt is {n_prompt} tokens: it fills {lm.name}'s window of {limit} tokens; "
            "shorten it"
        )
    if n_prompt + args.steps > limit:
        raise CliError(
            f"--steps {args.steps} does not fit: the window is {limit} tokens, the prompt uses "
            f"{n_prompt}; use --steps <= {limit - n_prompt}"
        )
    gen = generate(
        lm,
        args.prompt,
        max_new_tokens=args.steps,
        temperature=args.temperature,
        top_k=top_k,
        top_p=args.top_p,
        min_p=args.min_p,
        seed=args.seed,
        chat=args.chat,
        n_candidates=show,
    )
    mode = "greedy" if args.temperature == 0 else f"temperature {args.temperature:g}"
    print(f"{lm.name} · prompt of {len(gen.prompt_ids)} tokens · {mode}")
    print("each candidate: the model's own probability; (cut) = a filter removed it\n")
    for n, step in enumerate(gen.steps, 1):
        print(format_step(n, step))
        print()
    stop = "end-of-sequence token" if gen.stop_reason == "eos" else f"{args.steps} steps"
    shown = args.prompt if not args.chat else "[chat] " + args.prompt + "\n→ "
    print(f"Text ({stop}):\n{shown}{gen.text}")
    return 0


def cli(argv: list[str] | None = None) -> int:
    """Run ``llmlab explore``; bad input -> one line on stderr, exit code 2."""
    return run("explore", lambda: _explore(argv), FLAGS)
