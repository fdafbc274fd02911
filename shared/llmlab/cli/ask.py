"""``llmlab ask PATH "question"``: one answer from a folder of docs, quoted (or generated), cited.

By default (``--mode extract``) the answer is lines copied from your documents, chosen by code,
and its citation is exactly those lines; no language model runs. ``--mode quote``: the model
picks which lines to copy (it can only copy). ``--mode generate``: the model writes the answer,
streamed, labelled "generated"; every sentence no retrieved passage supports is left out of the
checked answer and listed. Below ``--min-score`` (default ``llmlab.rag.docchat.MIN_SCORE``) the
command says it could not find the answer instead of guessing.

Options: ``-k`` (passages retrieved, default 5), ``--mode``, ``--min-score``, ``--json`` (one
JSON object on stdout: answer, mode, citations ``{n, source, start, end, first_line, last_line,
text}`` (a ``Passage``), hits ``{source, first_line, last_line, score, cosine}``, abstained,
confidence, timings), ``--show-prompt`` (what the model read, if one ran), ``--max-tokens``
(generate mode), ``--rebuild``. The index lives in the user cache (``llmlab.search.docs_index``);
nothing in PATH is written. Index messages go to stderr, so stdout is only the answer (or JSON).
A server instead of the bundled model: set ``LLMLAB_CHAT_BASE_URL`` and ``LLMLAB_CHAT_MODEL``.

Bad input (missing or empty folder, no supported files, an empty question, ``-k`` below 1,
``--max-tokens`` beyond what the model's context window leaves) is one line on stderr and exit
code 2, checked before any model loads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from llmlab.cli.errors import ArgumentParser, CliError, run
from llmlab.cli.quiet import quiet_libraries
from llmlab.cli.tune import adapted_lm, add_adapter_option

FLAGS = {
    "k (the number of passages to retrieve)": "-k",
    "max_tokens": "--max-tokens",
    "max_new_tokens": "--max-tokens",
    "min_score": "--min-score",
}


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options ``ask`` and ``chat`` share."""
    from llmlab.rag.docchat import DEFAULT_MODE, MIN_SCORE, MODES

    parser.add_argument("-k", type=int, default=5, help="passages to retrieve (default: 5)")
    parser.add_argument(
        "--mode",
        choices=MODES,
        default=DEFAULT_MODE,
        help="extract: quote the lines that answer (no model; default); quote: the model "
        "picks which lines to copy; generate: the model writes, unsupported sentences are removed",
    )
    parser.add_argument(
        "--min-score",
        type=float,
        default=MIN_SCORE,
        help=f"answer only above this confidence (default: {MIN_SCORE}; lower answers more, "
        "and more wrongly)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per answer")
    add_adapter_option(parser)  # quote and generate modes read it; extract runs no model
    parser.add_argument(
        "--show-prompt", action="store_true", help="print exactly what the model read"
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=60,
        help="longest generated answer in tokens (--mode generate; default: 60)",
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the index from scratch")


def token_budget(question: str = "") -> tuple[int, int] | None:
    """``(context window, tokens of the shortest prompt)`` of the bundled model: the prompt
    with the instruction and ``question`` and no passage. Read from the model cache's config
    and tokenizer, without loading the weights; None when that cannot be known here (another
    model, a server, or a model not cached yet: then the model checks it itself)."""
    if os.environ.get("LLMLAB_CHAT_BASE_URL") or os.environ.get("LLMLAB_LM"):
        return None
    try:
        from llmlab.runtime.models import lm_cache_path

        folder = lm_cache_path()
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        from transformers import AutoTokenizer

        from llmlab.rag.docchat import INSTRUCTION

        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        chat = [
            {"role": "system", "content": INSTRUCTION},
            {"role": "user", "content": f"Passages:\n\nQuestion: {question}"},
        ]
        prompt = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        return int(config["max_position_embeddings"]), len(ids)
    except Exception:  # no cache yet, an unexpected layout: the model checks the limit itself
        return None


def check_options(args: argparse.Namespace, question: str = "") -> None:
    """Flags and folder checked before anything slow loads."""
    from llmlab.data.readers import scan_folder

    if args.k < 1:
        raise CliError(f"-k (passages to retrieve) must be 1 or more, got {args.k}.")
    if args.max_tokens < 1:
        raise CliError(f"--max-tokens must be 1 or more, got {args.max_tokens}.")
    scan_folder(args.path)  # missing, not a folder, no supported files
    if args.mode == "generate":  # the one mode that writes new tokens
        budget = token_budget(question)
        if budget is not None and args.max_tokens > budget[0] - budget[1]:
            window, prompt = budget
            raise CliError(
                f"--max-tokens at most {window - prompt:,} for this model, got "
                f"{args.max_tokens:,}: its context window is {window:,} tokens and the "
                f"instruction and your question take {prompt:,} (each passage takes more)."
            )


def note(command: str, message: str) -> None:
    print(f"llmlab {command}: {message}", file=sys.stderr)


def open_docchat(args: argparse.Namespace, command: str) -> Any:
    """Index (or update the index of) ``args.path`` and return a ``DocChat`` over it; the
    language model is loaded only by a mode that uses it."""
    quiet_libraries()  # no "Loading weights" bar in a terminal tool
    from llmlab.rag.docchat import DocChat
    from llmlab.search.docs_index import DocsIndex

    index = DocsIndex(args.path)
    report = index.update(rebuild=args.rebuild)
    note(command, report.summary())
    chat = None
    if args.mode == "generate" and os.environ.get("LLMLAB_CHAT_BASE_URL"):
        from llmlab.chat.local import load_chat

        chat = load_chat()
    return DocChat(
        index,
        chat,
        lm=adapted_lm(args.adapter) if args.mode != "extract" else None,
        k=args.k,
        mode=args.mode,
        min_score=args.min_score,
        max_new_tokens=args.max_tokens,
    )


def indent(text: str) -> str:
    return "\n".join(f"    {line}" if line.strip() else "" for line in text.splitlines())


def print_answer(answer: Any, args: argparse.Namespace, streamed: bool) -> None:
    """The answer (unless it was streamed), its sources and what the checks found."""
    if args.json:
        out = answer.to_json()
        if args.show_prompt:
            out["prompt"] = answer.prompt
        print(json.dumps(out, ensure_ascii=False), flush=True)
        return
    t = answer.timings
    took = f"({t.get('total_s', 0):.1f} s)"
    if answer.abstained and not answer.raw:  # refused before any model ran
        print(f"{answer.answer}\n")
        print(
            f"(confidence {answer.confidence:.2f}, below the {args.min_score:.2f} needed to "
            f"answer: nothing was shown) {took}"
        )
        return
    if answer.mode == "generate":
        print("\n" if streamed else "", end="")
        if answer.abstained:
            print(answer.answer)
        else:
            print(
                f"Checked answer (generated by the model; every sentence found in your documents):\n{answer.answer}"
            )
        for c in answer.citations:
            print(f"[{c.n}] {c.passage.where}")
        if answer.removed_citations:
            nums = ", ".join(f"[{n}]" for n in answer.removed_citations)
            print(f"Removed citations {nums}: no such passage was retrieved ({len(answer.hits)}).")
        for s in answer.unsupported:
            print(f"Left out, not found in your documents: {s!r}")
        print(f"({t.get('first_token_s', 0):.1f} s to first token, {t['total_s']:.1f} s in all)")
        return
    c = answer.citations[0]
    how = "the model chose these lines" if answer.mode == "quote" else "quoted as written"
    print(f"From {c.passage.where} ({how}):\n")
    print(indent(answer.answer))
    print(f"\n[{c.n}] {c.passage.where}  (confidence {answer.confidence:.2f}) {took}")


def answer_one(bot: Any, question: str, args: argparse.Namespace) -> Any:
    """Ask ``bot`` one question; a generated answer streams to stdout unless ``--json``."""

    def show_prompt(prompt: str) -> None:
        n = len(bot.lm.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        print(
            f"--- prompt: exactly what the model reads ({n} tokens) ---\n{prompt}\n"
            "--- end of prompt ---",
            flush=True,
        )

    streaming = bot.mode == "generate" and not args.json
    shown: list[str] = []

    def stream(piece: str) -> None:
        if not shown:
            print("Model's answer (generated, not yet checked): ", end="", flush=True)
        shown.append(piece)
        print(piece, end="", flush=True)

    on_prompt = show_prompt if args.show_prompt and not args.json else None
    answer = bot.ask(question, on_token=stream if streaming else None, on_prompt=on_prompt)
    print_answer(answer, args, streamed=bool(shown))
    return answer


def ask(args: argparse.Namespace) -> int:
    if not args.question.strip():
        raise CliError("The question is empty: ask something about your documents.")
    check_options(args, args.question)
    bot = open_docchat(args, "ask")
    answer_one(bot, args.question, args)
    return 0


def cli(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="llmlab ask",
        description=(
            "Answer a question from the .md/.txt/.rst/.py/.ipynb files (and READMEs) of a "
            "folder: the lines that answer it, quoted and cited."
        ),
    )
    parser.add_argument("path", help="folder of documents (searched recursively)")
    parser.add_argument("question", help="your question, in quotes")
    add_options(parser)
    return run("ask", lambda: ask(parser.parse_args(argv)), FLAGS)


if __name__ == "__main__":
    raise SystemExit(cli())
