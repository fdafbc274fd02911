"""``llmlab doctor``: check that Python, torch and the bundled models are ready."""

from __future__ import annotations

import argparse

from llmlab.cli.errors import ArgumentParser, run
from llmlab.runtime.diagnostics import run_checks


def doctor(args: argparse.Namespace) -> int:
    rows = run_checks(load=not args.no_load)
    width = max(len(r[0]) for r in rows)
    for what, ok, detail in rows:
        print(f"{'ok ' if ok else 'ERR'}  {what:<{width}}  {detail}")
    bad = [r for r in rows if not r[1]]
    if bad:
        print(
            f"\n{len(bad)} problem(s). Run the command shown above, or `make lab` to set everything up."
        )
        return 1
    print("\nAll good: LLM Lab is ready.")
    return 0


def cli(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="llmlab doctor", description=__doc__.splitlines()[0].strip("`"))
    parser.add_argument(
        "--no-load", action="store_true", help="only look for the models, do not load them"
    )
    return run("doctor", lambda: doctor(parser.parse_args(argv)))
