"""The ``llmlab`` command: one entry point, one subcommand per file in this folder.

Each subcommand is a module ``llmlab.cli.<name>`` with a function ``cli(argv) -> int`` that
parses the learner's flags and calls the library; it is imported only when used, so
``llmlab doctor`` never waits for torch. Every subcommand reports bad input the same way:
one line on stderr that names the flag the learner typed, exit code 2, no traceback
(``llmlab.cli.errors``).
"""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module that defines `cli(argv) -> int`, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("llmlab.cli.doctor", "check that Python, torch and the bundled models are ready"),
    "search": ("llmlab.cli.search", "semantic search over a folder of .md/.txt files"),
    "explore": ("llmlab.cli.explore", "step through generation, showing each token's candidates"),
    "attend": ("llmlab.cli.attend", "show which tokens attend to which (heat map / HTML)"),
    "ask": ("llmlab.cli.ask", "answer a question from a folder of docs, with checked citations"),
    "chat": ("llmlab.cli.chat", "chat with a folder of docs (follow-ups, cited answers)"),
    "serve": ("llmlab.cli.serve", "serve the model as an OpenAI-compatible API (tools, streaming)"),
    "research": (
        "llmlab.cli.research",
        "research a question in a folder: search, read, cite, verify",
    ),
    "tune": ("llmlab.cli.tune", "fine-tune the model on your chats (JSONL) with LoRA"),
}


def usage() -> str:
    lines = ["usage: llmlab COMMAND [options]   (llmlab COMMAND --help for details)", ""]
    lines += [f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"llmlab: unknown command {name!r}.\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.cli(rest) or 0)
