"""Byte-pair encoding (BPE) tokenizers from scratch: the algorithm behind GPT-4's tokenizer.

Covers:
- ``BasicTokenizer``: BPE on the raw UTF-8 bytes of a text, no pre-splitting. For teaching.
- ``RegexTokenizer``: byte-level BPE that first splits text with GPT-4's regex (words, numbers,
  punctuation and whitespace never merge across each other), with special tokens like
  ``<|endoftext|>`` and a tiktoken-style ``encode(text, allowed_special=...)``.
- ``RegexTokenizer.from_tiktoken(encoding)``: rebuilds the merge list from a tiktoken encoding's
  ranks, so our encoder gives exactly tiktoken's ids (checked id for id in the tests). The one
  known gap: characters added to Unicode after the tables compiled into tiktoken, which the
  (newer) `regex` module may class as letters.
- The BPE operations and the trainer (``get_stats``, ``merge``, ``best_pair``, ``train_merges``,
  ``render_token``) live in ``llmlab.tokenization.bpe_training`` and are importable from here too.

Speed without losing readability: training counts each distinct chunk once; encoding merges by
rank and remembers every chunk it has encoded (most chunks are looked up, not merged).

Leaves out: looking at tokens and counting them (``llmlab.tokenization.tokens``, ``llmlab.views.token_view``),
saving/loading trained tokenizers, the Rust-level tricks that make tiktoken faster, and
training-time handling of special tokens (they are added after training, as GPT models do).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from itertools import pairwise  # pairwise([1, 2, 3]) -> (1, 2), (2, 3)
from typing import Any, Literal

import regex  # the third-party `regex` module: GPT-4's pattern needs \p{L}, which `re` lacks

from llmlab.tokenization.bpe_training import (
    Pair,
    best_pair,
    check_train_args,
    get_stats,
    merge,
    render_token,
    train_merges,
)

# GPT-4's split pattern (cl100k_base), as tiktoken writes it. Read it as alternatives, tried in order:
#   '(?i:[sdmt]|ll|ve|re)       contractions: 's 't 'll 've 're (any case)
#   [^\r\n\p{L}\p{N}]?+\p{L}++  a word: letters, optionally led by one non-letter (usually a space)
#   \p{N}{1,3}+                 numbers, at most 3 digits per chunk ("12345" -> "123", "45")
#    ?[^\s\p{L}\p{N}]++[\r\n]*+ punctuation/symbols, optionally led by a space
#   \s++$ | \s*[\r\n] | \s+(?!\S) | \s   whitespace runs (a run leaves its last space to the next word)
GPT4_SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
GPT4_SPECIAL_TOKENS = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}

NEVER = float("inf")  # the "rank" of a pair that was never merged


def _fix_surrogates(text: str) -> str:
    """Make text encodable as UTF-8 exactly like tiktoken does: join surrogate pairs, lone ones -> U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


# --- tokenizers ----------------------------------------------------------------------------------


class Tokenizer:
    """What every tokenizer here shares: a vocabulary (id -> bytes), merges, special tokens, decoding."""

    def __init__(self) -> None:
        # (left id, right id) -> merged id; a lower id means an earlier merge
        self.merges: dict[Pair, int] = {}
        self.byte_ids: list[int] = list(range(256))  # byte value -> its id (GPT-4 permutes these)
        self.vocab: dict[int, bytes] = {i: bytes([i]) for i in range(256)}
        self.special_tokens: dict[str, int] = {}  # e.g. {"<|endoftext|>": 100257}
        self._cache: dict[str, list[int]] = {}  # chunk -> ids, so repeated words are encoded once

    @property
    def vocab_size(self) -> int:
        """Number of ids in use: bytes + merges + special tokens."""
        return len(self.vocab) + len(self.special_tokens)

    def register_special_tokens(self, special_tokens: dict[str, int]) -> None:
        """Add special tokens, e.g. ``{"<|endoftext|>": 100257}``; their ids must not clash with the vocab."""
        for tok, idx in special_tokens.items():
            if not isinstance(tok, str) or not tok or not isinstance(idx, int):
                raise ValueError(
                    f"Special tokens map a non-empty str to an int id, got {tok!r}: {idx!r}."
                )
            if idx in self.vocab:
                raise ValueError(
                    f"Special token {tok!r} wants id {idx}, which is already the token "
                    f"{render_token(self.vocab[idx])!r}. Use an id >= {max(self.vocab) + 1}."
                )
        self.special_tokens.update(special_tokens)

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The raw bytes behind ``ids`` (may end in the middle of a character)."""
        inverse_special = {i: s.encode("utf-8") for s, i in self.special_tokens.items()}
        parts = []
        for i in ids:
            if i in self.vocab:
                parts.append(self.vocab[i])
            elif i in inverse_special:
                parts.append(inverse_special[i])
            else:
                specials = (
                    f", plus special ids {sorted(inverse_special)}" if inverse_special else ""
                )
                raise ValueError(
                    f"Unknown token id {i!r}: ids go from 0 to {max(self.vocab)}{specials}."
                )
        return b"".join(parts)

    def decode(self, ids: Iterable[int]) -> str:
        """Ids back to text. Bytes that do not form valid UTF-8 become U+FFFD '�' (as in tiktoken)."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def _encode_chunk(self, text_bytes: bytes) -> list[int]:
        """BPE on one chunk: merge the neighbouring pair that was learned first, again and again."""
        ids = [self.byte_ids[b] for b in text_bytes]
        learned = self.merges.get
        while len(ids) >= 2:
            # each neighbouring pair's merged id (learned earlier = smaller); pairs never learned: inf
            ranks = [learned(pair, NEVER) for pair in pairwise(ids)]
            best = min(ranks)
            if best == NEVER:
                break  # nothing left to merge
            i = ranks.index(best)
            # merge every occurrence of that pair (its merged id is `best`). tiktoken merges one
            # occurrence at a time, leftmost first; that gives the same result, because no pair
            # created by this merge can have an earlier rank than the occurrences still waiting.
            ids = merge(ids, (ids[i], ids[i + 1]), best)
        return ids

    def clear_cache(self) -> None:
        """Forget the encoded chunks (for honest 'cold' timings)."""
        self._cache.clear()


class BasicTokenizer(Tokenizer):
    """BPE straight on the bytes of the whole text, no split: learns tokens like 'e ' (word end + space)."""

    def train(self, text: str, vocab_size: int, verbose: bool = False) -> None:
        """Learn ``vocab_size - 256`` merges from ``text``: the textbook loop, count -> merge -> repeat."""
        check_train_args(text, vocab_size)
        self.__init__()
        ids = list(text.encode("utf-8"))
        for idx in range(256, vocab_size):
            stats = get_stats(ids)
            if not stats:
                raise ValueError(
                    f"The text ran out of pairs after {idx - 256} merges (asked for {vocab_size - 256}). "
                    f"Give more text or a vocab_size of at most {idx}."
                )
            pair = best_pair(stats)
            ids = merge(ids, pair, idx)
            self.merges[pair] = idx
            self.vocab[idx] = self.vocab[pair[0]] + self.vocab[pair[1]]
            if verbose:
                print(
                    f"merge {idx - 255}/{vocab_size - 256}: {pair} -> {idx} {render_token(self.vocab[idx])!r}"
                )

    def encode(self, text: str) -> list[int]:
        """Text to ids (no pre-splitting, no special tokens)."""
        if not isinstance(text, str):
            raise TypeError(f"encode() needs a str, got {type(text).__name__}.")
        return self._encode_chunk(_fix_surrogates(text).encode("utf-8"))


class RegexTokenizer(Tokenizer):
    """Byte-level BPE with a regex pre-split (GPT-4's by default), special tokens, and a chunk cache."""

    def __init__(self, pattern: str | None = None, cache_size: int = 1_000_000) -> None:
        super().__init__()
        self.pattern = GPT4_SPLIT_PATTERN if pattern is None else pattern
        self.compiled_pattern = regex.compile(self.pattern)
        self.cache_size = cache_size  # at most this many distinct chunks are remembered

    def split(self, text: str) -> list[str]:
        """The pre-split: ``split("Hello world!!") -> ['Hello', ' world', '!!']``."""
        return self.compiled_pattern.findall(text)

    def train(self, text: str, vocab_size: int, verbose: bool = False) -> None:
        """Learn ``vocab_size - 256`` merges from ``text``; merges never cross chunk boundaries."""
        check_train_args(text, vocab_size)
        self.__init__(self.pattern, self.cache_size)
        # each distinct chunk once, with how often it occurs: " the" is handled once, not per occurrence
        chunk_counts = Counter(self.split(text))
        chunks = [list(c.encode("utf-8")) for c in chunk_counts]
        self.merges = train_merges(
            chunks, list(chunk_counts.values()), self.vocab, vocab_size - 256, verbose
        )

    def encode_ordinary(self, text: str) -> list[int]:
        """Text to ids, treating special-token strings as plain text."""
        if not isinstance(text, str):
            raise TypeError(f"encode() needs a str, got {type(text).__name__}.")
        text = _fix_surrogates(text)
        cache, ids = self._cache, []
        for chunk in self.compiled_pattern.findall(text):
            chunk_ids = cache.get(chunk)
            if chunk_ids is None:
                chunk_ids = self._encode_chunk(chunk.encode("utf-8"))
                if len(cache) >= self.cache_size:
                    cache.clear()  # simplest bound on memory: start afresh
                cache[chunk] = chunk_ids
            ids.extend(chunk_ids)
        return ids

    def encode(
        self,
        text: str,
        *,
        allowed_special: Literal["all"] | Collection[str] = (),
        disallowed_special: Literal["all"] | Collection[str] = "all",
    ) -> list[int]:
        """Text to ids, with tiktoken's rules for special tokens.

        A special-token string in ``text`` (e.g. "<|endoftext|>") becomes its single special id only
        if listed in ``allowed_special`` (or "all"). By default any other special-token string raises
        ``ValueError`` (a user could smuggle one in); ``disallowed_special=()`` encodes it as plain text.
        """
        if not isinstance(text, str):
            raise TypeError(f"encode() needs a str, got {type(text).__name__}.")
        allowed = set(self.special_tokens) if allowed_special == "all" else set(allowed_special)
        if disallowed_special == "all":
            disallowed = set(self.special_tokens) - allowed
        else:
            disallowed = set(disallowed_special)
        for tok in disallowed:
            if tok in text:
                raise ValueError(
                    f"The text contains the special token {tok!r}. Pass allowed_special={{{tok!r}}} "
                    f"(or 'all') to encode it as its special id, or disallowed_special=() to encode "
                    f"it as ordinary text."
                )
        allowed &= set(self.special_tokens)
        if not allowed:
            return self.encode_ordinary(text)
        # split around the special tokens (longest first), keep them, encode the text in between
        special_pattern = (
            "(" + "|".join(regex.escape(s) for s in sorted(allowed, key=len, reverse=True)) + ")"
        )
        ids = []
        for part in regex.split(special_pattern, text):
            if part in allowed:
                ids.append(self.special_tokens[part])
            elif part:
                ids.extend(self.encode_ordinary(part))
        return ids

    @classmethod
    def from_tiktoken(cls, encoding: Any) -> RegexTokenizer:
        """Rebuild a tiktoken encoding (e.g. cl100k_base) as merges, so ``encode`` gives its exact ids.

        tiktoken stores only ``token bytes -> rank``. Ranks are the merge order, so we replay it: for
        each multi-byte token, in rank order, encode its bytes with the merges found so far; what
        remains is exactly two pieces, and merging them makes this token.
        """
        ranks: dict[bytes, int] = encoding._mergeable_ranks
        tok = cls(pattern=encoding._pat_str)
        singles = {b[0]: r for b, r in ranks.items() if len(b) == 1}
        if len(singles) != 256:
            raise ValueError(
                f"Expected 256 single-byte tokens in {encoding.name}, found {len(singles)}."
            )
        # GPT-4 does not give byte b the id b: e.g. b"!" is 0. Keep the table, remember every byte's id.
        tok.byte_ids = [singles[b] for b in range(256)]
        tok.vocab = {r: b for b, r in ranks.items()}
        for token_bytes, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
            if len(token_bytes) == 1:
                continue
            parts = tok._encode_chunk(token_bytes)
            if len(parts) != 2:
                raise ValueError(
                    f"Token {token_bytes!r} (rank {rank}) is not a merge of two earlier tokens."
                )
            tok.merges[(parts[0], parts[1])] = rank
        tok.register_special_tokens(dict(encoding._special_tokens))
        return tok


def with_first_merges(tokenizer: RegexTokenizer, k: int) -> RegexTokenizer:
    """A copy of a trained ``tokenizer`` that knows only its first ``k`` merges (to see what each adds).

    ``with_first_merges(tok, 0)`` encodes every byte as its own token.
    """
    if not isinstance(k, int) or not 0 <= k <= len(tokenizer.merges):
        raise ValueError(
            f"k must be an int in [0, {len(tokenizer.merges)}] (the merges learned), got {k!r}."
        )
    merged = sorted(tokenizer.merges.values())  # merged ids, earliest first
    last = merged[k - 1] if k else -1
    copy = RegexTokenizer(tokenizer.pattern, tokenizer.cache_size)
    copy.byte_ids = list(tokenizer.byte_ids)
    copy.merges = {p: i for p, i in tokenizer.merges.items() if i <= last}
    later = set(merged[k:])
    copy.vocab = {i: b for i, b in tokenizer.vocab.items() if i not in later}
    return copy
