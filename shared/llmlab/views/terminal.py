"""Generation steps as plain text for a terminal: unicode probability bars, one line per candidate.

``bar(0.5, 4) -> '██  '``; ``format_step(n, step)`` shows the chosen token and its candidates
(``llmlab.decoding.generation.Step``), marking the ones a sampling filter cut. Leaves out: colours
(terminals differ) and anything interactive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmlab.decoding.generation import Step

BLOCKS = " ▏▎▍▌▋▊▉█"  # 0/8 .. 8/8 of a character cell


def bar(fraction: float, width: int = 24) -> str:
    """A unicode bar ``width`` characters long at full scale. ``bar(0.5, 4) -> '██  '``."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (BLOCKS[part] if part else "")).ljust(width)


def format_step(n: int, step: Step, width: int = 24) -> str:
    """One step as text: the chosen token, then its candidates with probability bars."""
    lines = [
        f"step {n:>3}  → {step.token!r:<16} p={step.prob:6.1%}   entropy {step.entropy:.2f} bits"
    ]
    for c in step.candidates:
        mark = "→" if c.token_id == step.token_id else " "
        cut = "" if c.kept else "  (cut)"
        lines.append(f"  {mark} {c.token!r:<16} {bar(c.prob, width)} {c.prob:6.1%}{cut}")
    return "\n".join(lines)
