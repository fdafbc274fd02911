"""Looking at tokens with any tokenizer, and what they cost: the practical side of tokenization.

Covers:
- ``token_pieces(text, tokenizer)``: (id, piece) pairs from a tiktoken ``Encoding``, an
  ``llmlab.tokenization.bpe`` tokenizer or a Hugging Face tokenizer (byte-level pieces like ``'Ġworld'`` turned
  back into ``' world'``; WordPiece keeps its ``##`` marks).
- ``count_tokens(text)``: how many tokens a text is (GPT-4's cl100k_base by default).
- ``token_cost(n_tokens, usd_per_million)``: what a number of tokens costs at a given price.
- ``encoding_speeds(tokenizer, text, reference)``: MB/s of our encoder (cold and warm chunk
  cache, the regex split alone) next to a reference such as tiktoken, measured fairly.

Leaves out: drawing tokens (``llmlab.views.token_view``) and how tokenizers are built (``llmlab.tokenization.bpe``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from llmlab.tokenization.bpe import RegexTokenizer, Tokenizer
from llmlab.tokenization.bpe_training import render_token

# An example price for illustration only; real prices differ by provider and model and change often.
EXAMPLE_USD_PER_MILLION_TOKENS = 2.50


@dataclass
class TokenPiece:
    """One token of a text: its id and what it stands for (``\\xNN`` for part of a character)."""

    id: int
    text: str


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table that shows each byte as a printable character (space -> 'Ġ', newline -> 'Ċ')."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


_UNICODE_TO_BYTE = {c: b for b, c in _bytes_to_unicode().items()}


def token_pieces(
    text: str, tokenizer: Any, *, add_special_tokens: bool = False
) -> list[TokenPiece]:
    """Split ``text`` with any tokenizer and return (id, piece) pairs.

    Works with a tiktoken ``Encoding``, our ``Tokenizer`` classes, and Hugging Face tokenizers
    (byte-level BPE pieces are turned back into text; WordPiece keeps its ``##`` continuation marks).
    Special-token strings in ``text`` (like "<|im_start|>") are treated as special tokens.
    """
    if not isinstance(text, str):
        raise TypeError(f"token_pieces() needs a str, got {type(text).__name__}.")
    if hasattr(tokenizer, "decode_single_token_bytes"):  # tiktoken
        ids = tokenizer.encode(text, allowed_special="all")
        return [
            TokenPiece(id=i, text=render_token(tokenizer.decode_single_token_bytes(i))) for i in ids
        ]
    if isinstance(tokenizer, Tokenizer):  # ours
        ids = (
            tokenizer.encode(text, allowed_special="all")
            if isinstance(tokenizer, RegexTokenizer)
            else tokenizer.encode(text)
        )
        return [TokenPiece(id=i, text=render_token(tokenizer.decode_bytes([i]))) for i in ids]
    if hasattr(tokenizer, "convert_ids_to_tokens"):  # Hugging Face
        ids = tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"]
        names = tokenizer.convert_ids_to_tokens(ids)
        specials = set(tokenizer.all_special_tokens)
        byte_level = _is_byte_level(tokenizer)  # pieces like 'Ġworld' stand for bytes (' world')
        pieces = []
        for i, name in zip(ids, names, strict=True):
            if byte_level and name not in specials and all(c in _UNICODE_TO_BYTE for c in name):
                name = render_token(bytes(_UNICODE_TO_BYTE[c] for c in name))
            pieces.append(TokenPiece(id=int(i), text=name))
        return pieces
    raise TypeError(
        f"Don't know how to tokenize with a {type(tokenizer).__name__}: pass a tiktoken Encoding, "
        "an llmlab Tokenizer, or a Hugging Face tokenizer."
    )


def _is_byte_level(hf_tokenizer: Any) -> bool:
    """True for GPT-2-style byte-level BPE tokenizers (SmolLM2's), False for WordPiece etc."""
    backend = getattr(hf_tokenizer, "backend_tokenizer", None)
    return backend is not None and type(backend.decoder).__name__ == "ByteLevel"


def count_tokens(text: str, tokenizer: Any = None) -> int:
    """How many tokens ``text`` is (GPT-4's cl100k_base unless you pass a tokenizer)."""
    if tokenizer is None:
        from llmlab.runtime.models import load_tokenizer

        tokenizer = load_tokenizer()
    return len(token_pieces(text, tokenizer))


def token_cost(n_tokens: int, usd_per_million: float = EXAMPLE_USD_PER_MILLION_TOKENS) -> float:
    """Dollars for ``n_tokens`` at a price per million tokens: ``token_cost(2_000_000, 2.5) -> 5.0``.

    The default price is an example, not any provider's current price: pass your own.
    """
    if n_tokens < 0 or usd_per_million < 0:
        raise ValueError(
            f"Token count and price must be >= 0, got {n_tokens} and {usd_per_million}."
        )
    return n_tokens * usd_per_million / 1_000_000


def encoding_speeds(
    tokenizer: RegexTokenizer, text: str, reference: Any = None, repeat: int = 3
) -> dict[str, float]:
    """MB/s (10**6 UTF-8 bytes per second) encoding ``text``, one thread, as a dict with keys
    ``"cold"`` (chunk cache emptied first), ``"warm"`` (every chunk cached), ``"split"`` (the regex
    pre-split alone) and, if given, ``"reference"`` (``reference.encode_ordinary``, e.g. tiktoken).

    The contenders take turns, round after round, and each keeps its fastest round (like
    ``timeit``): a busy moment on the machine slows one round of everyone, not one contender.
    """
    if not isinstance(tokenizer, RegexTokenizer):
        raise ValueError(
            f"encoding_speeds() times a RegexTokenizer, got {type(tokenizer).__name__}."
        )
    if not isinstance(text, str) or not text:
        raise ValueError("encoding_speeds() needs a non-empty text to encode.")
    if not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"repeat must be an int >= 1, got {repeat!r}.")

    def seconds(encode: Any) -> float:
        t0 = time.perf_counter()
        encode(text)
        return time.perf_counter() - t0

    best: dict[str, float] = {}
    for _ in range(repeat):
        times = {} if reference is None else {"reference": seconds(reference.encode_ordinary)}
        tokenizer.clear_cache()
        times["cold"] = seconds(tokenizer.encode_ordinary)  # every chunk merged from scratch
        times["warm"] = seconds(tokenizer.encode_ordinary)  # every chunk now a cache look-up
        times["split"] = seconds(tokenizer.split)
        for name, t in times.items():
            best[name] = min(best.get(name, float("inf")), t)
    megabytes = len(text.encode("utf-8")) / 1e6
    return {name: megabytes / t for name, t in best.items()}
