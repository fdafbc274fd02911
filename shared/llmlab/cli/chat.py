"""``llmlab chat PATH``: a multi-turn conversation with a folder of docs, in the terminal.

Each line you type is a question; follow-ups ("and how do I undo that?") are searched together
with the last standalone question, and what was already answered in this conversation is not
given again (so a follow-up gets the next lines, not a repeat). In ``--mode generate`` earlier
turns are kept while they fit the context window (oldest dropped first). ``/reset`` forgets the
conversation; an empty line, ``exit`` or Ctrl-D ends it. Piped input (``llmlab chat docs <
questions.txt``) is echoed as ``you> question`` before each answer, so the transcript reads like
the conversation. Same options as ``llmlab ask`` (``-k``, ``--mode``, ``--min-score``, ``--json``
= one JSON object per line per answer, ``--show-prompt``, ``--max-tokens``, ``--rebuild``). A
question that fails (e.g. too long for the window) prints one line and the chat goes on.
"""

from __future__ import annotations

import argparse
import sys

from llmlab.cli.ask import FLAGS, add_options, answer_one, check_options, note, open_docchat
from llmlab.cli.errors import ArgumentParser, flag_names, run

QUIT = {"", "exit", "quit", ":q"}


def chat(args: argparse.Namespace) -> int:
    check_options(args)
    bot = open_docchat(args, "chat")
    interactive = sys.stdin.isatty()
    if interactive:
        note("chat", "ask about your documents; /reset forgets the conversation; empty line quits.")
    while True:
        if interactive:
            print("\nyou> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        question = line.strip()
        if not line or question.lower() in QUIT:
            return 0
        if not interactive and not args.json:
            print(f"you> {question}", flush=True)  # a piped transcript shows what was asked
        if question == "/reset":
            bot.reset()
            note("chat", "conversation forgotten.")
            continue
        try:
            answer = answer_one(bot, question, args)
        except ValueError as exc:  # one bad turn does not end the conversation
            note("chat", flag_names(" ".join(str(exc).split()), FLAGS))
            continue
        if answer.dropped and not args.json:
            print(f"(dropped the {len(answer.dropped)} oldest messages to fit the context window)")
        if not args.json:
            print()


def cli(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="llmlab chat",
        description=(
            "Chat with the .md/.txt/.rst/.py/.ipynb files (and READMEs) of a folder; answers "
            "quote and cite the lines they come from."
        ),
    )
    parser.add_argument("path", help="folder of documents (searched recursively)")
    add_options(parser)
    return run("chat", lambda: chat(parser.parse_args(argv)), FLAGS)


if __name__ == "__main__":
    raise SystemExit(cli())
