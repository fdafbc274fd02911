"""Tokens as coloured text: one background colour per token, its id on hover.

Covers ``token_html`` (plain HTML, no scripts or links: renders offline), ``TokenView`` (shows as
coloured HTML in a notebook, ``[piece|piece]`` in a terminal) and ``show_tokens(text, tokenizer)``.
Leaves out: splitting text (``llmlab.tokenization.tokens.token_pieces`` does that for every tokenizer).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from llmlab.tokenization.tokens import TokenPiece, token_pieces

# Light background colours that keep black text readable; neighbours always differ.
PALETTE = ["#ffd6a5", "#caffbf", "#9bf6ff", "#bdb2ff", "#ffc6ff", "#fdffb6", "#a0c4ff", "#ffadad"]


def token_html(pieces: list[TokenPiece], show_whitespace: bool = True) -> str:
    """Coloured ``<span>``s, one per token, with ``id N`` on hover. Plain HTML: renders offline."""
    spans = []
    for k, p in enumerate(pieces):
        shown = p.text
        if show_whitespace:
            shown = shown.replace(" ", "·").replace("\n", "↵\n").replace("\t", "→")
        spans.append(
            f'<span title="id {p.id}" style="background:{PALETTE[k % len(PALETTE)]};color:#000;'
            f'border-radius:3px;padding:1px 0;margin-right:1px">{html.escape(shown)}</span>'
        )
    return (
        '<div style="font-family:monospace;white-space:pre-wrap;line-height:1.9">'
        + "".join(spans)
        + f'</div><div style="font-size:small;color:#666">{len(pieces)} tokens</div>'
    )


@dataclass
class TokenView:
    """What ``show_tokens`` returns: coloured in a notebook, ``[piece|piece]`` in a terminal."""

    pieces: list[TokenPiece]
    show_whitespace: bool = True

    def _repr_html_(self) -> str:
        return token_html(self.pieces, self.show_whitespace)

    def __repr__(self) -> str:
        return "[" + "|".join(p.text for p in self.pieces) + f"]  ({len(self.pieces)} tokens)"

    @property
    def ids(self) -> list[int]:
        return [p.id for p in self.pieces]


def show_tokens(
    text: str,
    tokenizer: Any = None,
    *,
    show_whitespace: bool = True,
    add_special_tokens: bool = False,
) -> TokenView:
    """Show how ``tokenizer`` (default: GPT-4's cl100k_base) splits ``text``; hover a token for its id."""
    if tokenizer is None:
        from llmlab.runtime.models import load_tokenizer

        tokenizer = load_tokenizer()
    return TokenView(
        pieces=token_pieces(text, tokenizer, add_special_tokens=add_special_tokens),
        show_whitespace=show_whitespace,
    )
