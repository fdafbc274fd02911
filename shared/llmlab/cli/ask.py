"""``llmlab ask PATH "question"``: one answer from a folder of docs, streamed, cited and checked.

Options: ``-k`` (passages retrieved, default 5), ``--json`` (one JSON object on stdout: answer,
citations ``{n, source, start_line, end_line, text}``, hits ``{source, score, ...}``, abstained,
timings), ``--show-prompt`` (print exactly what the model read), ``--max-tokens``, ``--rebuild``.
The index lives in the user cache (``llmlab.search.docs_index``); nothing in PATH is written. Index
messages and the progress bar go to stderr, so stdout is only the answer (or the JSON).
A server instead of the bundled model: set ``LLMLAB_CHAT_BASE_URL`` and ``LLMLAB_CHAT_MODEL``.

Bad input (missing or empty folder, no supported files, an empty question, ``-k`` below 1) is one
line on stderr and exit code 2, checked before any model loads.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from llmlab.cli.errors import ArgumentParser, CliError, run

FLAGS = {
    "k (the number of passages to retrieve)": "-k",
    "max_tokens": "--max-tokens",
    "max_new_tokens": "--max-tokens",
}


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options ``ask`` and ``chat`` share."""
    parser.add_argument("-k", type=int, default=5, help="passages to retrieve (default: 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per answer")
    parser.add_argument(
        "--show-prompt", action="store_true", help="print exactly what the model read"
    )
    parser.add_argument(
        "--max-tokens", type=int, default=60, help="longest answer in tokens (default: 60)"
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the index from scratch")


def check_options(args: argparse.Namespace) -> None:
    """Flags and folder checked before anything slow loads."""
    from llmlab.data.readers import scan_folder

    if args.k < 1:
        raise CliError(f"-k (passages to retrieve) must be 1 or more, got {args.k}.")
    if args.max_tokens < 1:
        raise CliError(f"--max-tokens must be 1 or more, got {args.max_tokens}.")
    scan_folder(args.path)  # missing, not a folder, no supported files


def note(command: str, message: str) -> None:
    print(f"llmlab {command}: {message}", file=sys.stderr)


def open_docchat(args: argparse.Namespace, command: str) -> Any:
    """Index (or update the index of) ``args.path`` and return a ``DocChat`` over it."""
    import os
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar in a terminal tool
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)
    from llmlab.chat.local import load_chat
    from llmlab.rag.docchat import DocChat
    from llmlab.search.docs_index import DocsIndex

    index = DocsIndex(args.path)
    report = index.update(rebuild=args.rebuild)
    note(command, report.summary())
    return DocChat(index, load_chat(), k=args.k, max_new_tokens=args.max_tokens)


def print_answer(answer: Any, args: argparse.Namespace, streamed: bool) -> None:
    """The answer (unless it was streamed), its sources and what the checks found."""
    if args.json:
        out = answer.to_json()
        if args.show_prompt:
            out["prompt"] = answer.prompt
        print(json.dumps(out, ensure_ascii=False), flush=True)
        return
    print(("" if streamed else answer.answer) + "\n")
    if answer.abstained:
        print(
            f"(the nearest passage has cosine similarity {answer.confidence:.2f} with the question, "
            f"below the {args.min_cosine:.2f} needed to answer: the model was not asked)"
        )
        return
    if answer.answer != answer.raw:
        print(f"Checked answer: {answer.answer}")
    for c in answer.citations:
        print(f"[{c.n}] {c.source}:{c.start_line}-{c.end_line}")
    if answer.removed_citations:
        nums = ", ".join(f"[{n}]" for n in answer.removed_citations)
        print(f"Removed citations {nums}: no such passage was retrieved (only {len(answer.hits)}).")
    for s in answer.sentences:
        if s.added:
            print(f"Citation [{s.cites[0]}] added by the checker: the model cited nothing there.")
        if not s.supported:
            print(f"Not supported by its source (word overlap {s.support:.0%}): {s.sentence!r}")
    t = answer.timings
    print(f"({t.get('first_token_s', 0):.1f} s to first token, {t['total_s']:.1f} s in all)")


def answer_one(bot: Any, question: str, args: argparse.Namespace) -> Any:
    """Ask ``bot`` one question; stream it to stdout unless ``--json``."""

    def show_prompt(prompt: str) -> None:
        n = len(bot.lm.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        print(
            f"--- prompt: exactly what the model reads ({n} tokens) ---\n{prompt}\n"
            "--- end of prompt ---",
            flush=True,
        )

    stream = None if args.json else (lambda piece: print(piece, end="", flush=True))
    on_prompt = show_prompt if args.show_prompt and not args.json else None
    answer = bot.ask(question, on_token=stream, on_prompt=on_prompt)
    args.min_cosine = bot.min_cosine
    print_answer(answer, args, streamed=stream is not None)
    return answer


def ask(args: argparse.Namespace) -> int:
    if not args.question.strip():
        raise CliError("The question is empty: ask something about your documents.")
    check_options(args)
    bot = open_docchat(args, "ask")
    answer_one(bot, args.question, args)
    return 0


def cli(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="llmlab ask",
        description=(
            "Answer a question from the .md/.txt/.rst/.py/.ipynb files of a folder, citing the passages."
        ),
    )
    parser.add_argument("path", help="folder of documents (searched recursively)")
    parser.add_argument("question", help="your question, in quotes")
    add_options(parser)
    return run("ask", lambda: ask(parser.parse_args(argv)), FLAGS)


if __name__ == "__main__":
    raise SystemExit(cli())
