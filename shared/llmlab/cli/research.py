"""``llmlab research CORPUS "question"``: a researched answer from a folder, every sentence cited.

CORPUS is a folder of .md/.txt/.rst/.py/.ipynb files, or the word ``wiki`` for the default
Wikipedia corpus (``llmlab.research.corpus.wiki_corpus()``). Prints the answer, then each cited
sentence once -- "verified" with the file, the lines and the words it rests on, or
"unsupported" with nothing quoted -- then what the check dropped, then the cost (``render``).
Options: ``--mode`` (facts, rag, agent, plan, verify; see ``llmlab.research.agent``),
``--max-steps``, ``--max-tokens``, ``--max-seconds`` (the budget: when one runs out the answer
is partial and the stop reason says which), ``--json`` (one JSON object: answer, short_answer,
mode, citations ``{source, first_line, last_line, text, verified}``, steps
``{tool, arguments, result}``, tokens, seconds, stop_reason), ``--trace FILE`` (every step as one
JSON line).
A server instead of the bundled model: set ``LLMLAB_CHAT_BASE_URL`` and ``LLMLAB_CHAT_MODEL``.

Bad input (an empty question, a missing or empty folder, a budget <= 0, an unknown mode) is one
line on stderr and exit code 2, checked before any model loads.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from llmlab.cli.errors import ArgumentParser, CliError, run
from llmlab.cli.quiet import quiet_libraries
from llmlab.cli.tune import adapted_chat, add_adapter_option

QUOTE = 80  # characters of a quoted line shown (cut at a word, never mid-word)
FLAGS = {"max_steps": "--max-steps", "max_tokens": "--max-tokens", "max_seconds": "--max-seconds"}


def research(args: argparse.Namespace) -> int:
    from llmlab.agents.run_record import Budget
    from llmlab.research.agent import DEFAULT_MODE, MODES
    from llmlab.research.corpus import Corpus

    if not args.question.strip():
        raise CliError("The question is empty: ask something the documents can answer.")
    args.mode = args.mode or DEFAULT_MODE
    if args.mode not in MODES:
        raise CliError(f"--mode must be one of {', '.join(MODES)}, got {args.mode!r}.")
    for flag, value in (
        ("--max-steps", args.max_steps),
        ("--max-tokens", args.max_tokens),
        ("--max-seconds", args.max_seconds),
    ):
        if value <= 0:
            raise CliError(
                f"{flag} must be more than 0, got {value}: with no budget the agent "
                "cannot take a single step."
            )
    budget = Budget(
        max_steps=args.max_steps, max_tokens=args.max_tokens, max_seconds=args.max_seconds
    )
    if args.corpus == "wiki":
        from llmlab.research.corpus import wiki_corpus

        folder = wiki_corpus()
    else:
        folder = Path(args.corpus)
    corpus = Corpus(folder)  # missing, not a folder, no readable files: ValueError, exit 2
    quiet_libraries()
    from llmlab.research.agent import research as run_research

    chat = adapted_chat(args.adapter)  # None: the bundled model, loaded when first used
    result = run_research(args.question, corpus, chat=chat, budget=budget, mode=args.mode)
    if args.trace:
        with open(args.trace, "w", encoding="utf-8") as f:
            for step in result.steps:
                f.write(json.dumps(asdict(step), ensure_ascii=False) + "\n")
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False), flush=True)
        return 0
    print(render(result))
    return 0


def quote(text: str, limit: int = QUOTE) -> str:
    """``text`` on one line, cut at a word with "..." if longer than ``limit``."""
    from llmlab.research.steps import summary

    return summary(text, limit)


def render(result: Any) -> str:
    """A research result for a terminal: the answer, then every cited sentence once (verified:
    where and what it rests on; unsupported: nothing quoted), what was dropped, the cost."""
    import re

    lines = []
    if result.mode == "facts":
        lines.append(f"Answer: {result.short_answer}" if result.short_answer else "No answer.")
        if result.conclusion:
            lines.append(f"{result.conclusion} (computed by code from the facts below)")
        if result.why:
            lines.append(f"Why no answer: {result.why}.")
        heading = "Facts, each copied from a document and checked against the lines it cites:"
    else:
        lines.append(f"Answer: {result.answer}")
        heading = "Each cited sentence, checked against the lines it cites:"
    by_sentence: dict[str, list[Any]] = {}
    for c in result.citations:
        by_sentence.setdefault(c.sentence, []).append(c)
    if by_sentence:
        lines += ["", heading]
    for sentence, cites in by_sentence.items():
        bare = re.sub(r"\s*\[[^\[\]]*\]", "", sentence).strip()
        good = list({c.where: c for c in cites if c.verified}.values())  # each place once
        if good:
            lines.append(f"  verified     {bare}")
            lines += [f'               {c.where}  "{quote(c.text)}"' for c in good]
        else:
            named = ", ".join(dict.fromkeys(c.source for c in cites))
            lines.append(f"  unsupported  {bare}  (no line of {named} supports it)")
    for sentence in result.dropped:
        lines.append(f"  dropped      {quote(sentence)}  (no document read supports it)")
    lines.append(
        f"\n(mode {result.mode}; {len(result.steps)} steps, {result.tokens} tokens, "
        f"{result.seconds:.1f} s; stopped: {result.stop_reason})"
    )
    return "\n".join(lines)


def cli(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="llmlab research",
        description=(
            "Research a question in a folder of documents (or 'wiki'): search, read, answer with a "
            "cited source for every sentence, check each citation."
        ),
    )
    parser.add_argument("corpus", help="folder of documents, or 'wiki' for the Wikipedia corpus")
    parser.add_argument("question", help="your question, in quotes")
    parser.add_argument(
        "--mode",
        default=None,  # llmlab.research.agent.DEFAULT_MODE, read once the command runs
        help="facts, rag, agent, plan or verify (default: facts)",
    )
    parser.add_argument("--max-steps", type=int, default=8, help="most steps (default: 8)")
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=6000,
        help="most model tokens, read + written (default: 6000)",
    )
    parser.add_argument(
        "--max-seconds", type=float, default=60.0, help="most wall-clock seconds (default: 60)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--trace", metavar="FILE", help="write every step as a JSON line to FILE")
    add_adapter_option(parser)
    return run("research", lambda: research(parser.parse_args(argv)), FLAGS)


if __name__ == "__main__":
    raise SystemExit(cli())
