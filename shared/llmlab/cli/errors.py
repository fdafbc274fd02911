"""How every ``llmlab`` subcommand reports a problem: one line the learner can act on, exit 2.

``run(command, body, argv_flags)`` calls ``body()`` and turns the library's ``ValueError``s
(bad settings, text too long, unknown model, ...) into ``llmlab COMMAND: message`` on stderr
with exit code 2, instead of a traceback. ``ArgumentParser`` does the same for a mistyped
flag. ``CliError`` is for problems the command itself finds
(a flag out of range, a path that is not a folder). ``flag_names`` rewrites the library's
parameter names in a message (``max_new_tokens``) into the flags the learner typed
(``--steps``), so the advice matches what they can change.

Leaves out: logging and colours. A real bug (anything that is not a ValueError or OSError)
still shows its traceback: that is a bug to report, not the learner's input.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Mapping
from typing import NoReturn

EXIT_BAD_INPUT = 2


class CliError(ValueError):
    """Bad input found by a command itself; its message is shown as one line."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag raises ``CliError`` (one line, exit 2 via ``run``) instead of
    printing the whole usage block and exiting from deep inside the parser."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} ({self.prog} --help lists the options)")


def flag_names(message: str, flags: Mapping[str, str]) -> str:
    """Replace library parameter names with CLI flags: ``{"max_new_tokens": "--steps"}``.

    >>> flag_names("max_new_tokens must be >= 1", {"max_new_tokens": "--steps"})
    '--steps must be >= 1'
    """
    for param, flag in flags.items():
        message = re.sub(rf"(?<![\w-]){re.escape(param)}(?!\w)", flag, message)
    return message


def fail(command: str, message: str) -> int:
    """Print ``llmlab COMMAND: message`` (first line only) to stderr and return exit code 2."""
    first = " ".join(str(message).strip().split("\n")[0].split()) or "invalid input"
    print(f"llmlab {command}: {first}", file=sys.stderr)
    return EXIT_BAD_INPUT


def run(
    command: str, body: Callable[[], int | None], flags: Mapping[str, str] | None = None
) -> int:
    """Run a subcommand's body; bad input becomes one line on stderr and exit code 2."""
    try:
        return int(body() or 0)
    except (ValueError, OSError, LookupError) as exc:  # bad input: the message says what to do
        return fail(command, flag_names(str(exc), flags or {}))
    except KeyboardInterrupt:
        print(f"llmlab {command}: interrupted", file=sys.stderr)
        return 130
