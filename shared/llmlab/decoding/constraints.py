"""Constrained decoding: at every step, forbid the tokens that would make the output invalid.

A *constraint* says which tokens may come next so the text stays in a language (a regex, a JSON
schema, a grammar); ``fast_generate(..., constraint=c)`` gives the others score -inf before choosing.
Protocol: ``.allowed() -> np.ndarray`` (bool ``(V,)``), ``.advance(token_id)``, ``.done``,
``.reset()``.

- ``RegexConstraint(lm, pattern)``: the idea by hand (``regex`` partial matching; slow, see why).
- ``GrammarConstraint(lm, schema=... | grammar=...)``: the same masks from llguidance (Rust).
  ``forcing=True``: where the grammar allows one text only (``{"name": "``), llguidance allows
  only that text's own tokens, one token per step, so ``fast_generate`` writes them all in one pass.
- ``json_rule``: a JSON schema as a Lark rule for llguidance, laid out like ``json.dumps``
  (", " and ": "), the layout the hand-written regexes use too.
- The language of tool calls (what to constrain *to*) is ``llmlab.tool_use.grammar``.
- ``ConstraintError``: a schema or grammar the engine cannot handle, or a dead end.

Leaves out: batched masks, backtracking, string ``pattern``/``format`` and number bounds in the
hand-written regex compiler (llguidance handles them). Forcing is off by default so both engines
allow exactly the same tokens (a forced text could otherwise be split into tokens any way).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from llmlab.decoding.chat_template import stop_token_ids

if TYPE_CHECKING:
    from llmlab.runtime.models import LM

# The JSON layout json.dumps writes (and the prompt's examples use): ", " and ": ", no newlines.
JSON_LAYOUT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
_CACHE: dict[tuple[str, int], tuple[Any, Any]] = {}  # (what, id(tokenizer)) -> (tokenizer, value)


class ConstraintError(ValueError):
    """A schema/grammar the constraint engine cannot use, or no token can continue the text."""


def _cached(kind: str, tokenizer: Any, build: Any) -> Any:
    """``build(tokenizer)`` once per tokenizer (the tokenizer is kept alive, so its id stays)."""
    key = (kind, id(tokenizer))
    if key not in _CACHE:
        _CACHE[key] = (tokenizer, build(tokenizer))
    return _CACHE[key][1]


def _vocab_size(lm: LM) -> int:
    from llmlab.runtime.architecture import config_of

    return config_of(lm).vocab_size


class TokenTable:
    """Every token's text, decoded once per tokenizer (~0.2 s): what ``RegexConstraint`` tests.

    ``usable`` is False for special tokens and for byte pieces of a character ("\\ufffd" alone).
    ``prefixes``: for k = 1, 2 the distinct k-character beginnings and each token's index among
    them, so a beginning shared by thousands of tokens (" " starts half the vocabulary) is
    tested once.
    """

    def __init__(self, tokenizer: Any, vocab_size: int) -> None:
        self.texts = [tokenizer.decode([i]) for i in range(vocab_size)]
        special = {int(i) for i in getattr(tokenizer, "added_tokens_decoder", {})}
        special |= set(tokenizer.all_special_ids)
        self.usable = np.array(
            [i not in special and t != "" and "\ufffd" not in t for i, t in enumerate(self.texts)]
        )  # (V,)
        self.lengths = np.array([len(t) for t in self.texts])  # (V,)
        self.prefixes = []
        for k in (1, 2):
            heads = np.array([t[:k] for t in self.texts], dtype=object)  # (V,)
            self.prefixes.append((k, *np.unique(heads, return_inverse=True)))


def token_table(lm: LM) -> TokenTable:
    """The cached ``TokenTable`` of ``lm``'s tokenizer."""
    return _cached("texts", lm.tokenizer, lambda tok: TokenTable(tok, _vocab_size(lm)))


class RegexConstraint:
    """Keep the output a (prefix of a) full match of ``pattern``: the hand-written version.

    A token may come next if ``regex.fullmatch(pattern, text_so_far + token_text, partial=True)``
    still holds (partial: "this could still become a match"); end-of-sequence only once the text
    is a complete match. Cost per step: one regex call per 1- and 2-character beginning still in
    play, then one per surviving longer token. Between JSON keys that is a few calls (a few ms);
    inside a JSON string or free text nearly all 49,152 tokens survive, and each call re-scans
    the whole text so far: hundreds of milliseconds per token, more than the model's forward
    pass. Real engines (llguidance, outlines, XGrammar) compile the language into an automaton
    once, carry its state from token to token instead of re-reading the text, and walk a trie of
    the vocabulary so a shared prefix is tested once: well under a millisecond per token.
    Tokens that are only part of a character (byte pieces) are never allowed here.
    """

    def __init__(self, lm: LM, pattern: str) -> None:
        import regex

        try:
            self.pattern = regex.compile(pattern)
        except regex.error as exc:
            raise ConstraintError(f"Not a valid regex: {exc}. Pattern: {pattern!r}") from None
        self.table = token_table(lm)
        self.eos = sorted(stop_token_ids(lm))
        self.reset()

    def reset(self) -> None:
        """Start again from empty text."""
        self.text, self.finished, self._mask = "", False, None

    def _alive(self, text: str) -> bool:
        return self.pattern.fullmatch(text, partial=True) is not None

    def allowed(self) -> np.ndarray:
        """Bool ``(V,)``: True for every token that keeps the text a possible match."""
        if self._mask is not None:
            return self._mask
        t = self.table
        mask = np.zeros(len(t.texts), dtype=bool)  # (V,)
        if not self.finished:
            mask = t.usable.copy()
            for k, heads, index in t.prefixes:  # prune by shared beginnings first
                ask = np.unique(index[mask & (t.lengths >= k)])  # beginnings still in play
                alive = np.zeros(len(heads), dtype=bool)
                alive[ask] = [self._alive(self.text + heads[j]) for j in ask]
                mask &= alive[index] | (t.lengths < k)  # (V,) tokens of <= k chars are decided
            for i in np.nonzero(mask & (t.lengths > k))[0]:  # the rest: one regex call each
                mask[i] = self._alive(self.text + t.texts[i])
            mask[self.eos] = self.pattern.fullmatch(self.text) is not None
            if not mask.any():
                raise ConstraintError(f"No token can continue {self.text[-60:]!r} under the regex.")
        self._mask = mask
        return mask

    def advance(self, token_id: int) -> None:
        """Append the chosen token (end-of-sequence finishes). ValueError if it breaks the regex."""
        token_id = int(token_id)
        if token_id in self.eos:
            if self.pattern.fullmatch(self.text) is None:
                raise ConstraintError("End-of-sequence before the text is a complete match.")
            self.finished = True
        elif not (
            self.table.usable[token_id] and self._alive(self.text + self.table.texts[token_id])
        ):
            raise ConstraintError(
                f"Token {token_id} ({self.table.texts[token_id]!r}) breaks the regex."
            )
        else:
            self.text += self.table.texts[token_id]
        self._mask = None

    @property
    def done(self) -> bool:
        """True once nothing but end-of-sequence may follow (or it was written)."""
        if self.finished:
            return True
        mask = self.allowed()
        return bool(mask[self.eos].any()) and int(mask.sum()) == int(mask[self.eos].sum())


def llg_tokenizer(lm: LM) -> Any:
    """llguidance's view of ``lm``'s tokenizer (built once per tokenizer, ~0.5 s, then cached)."""
    import llguidance.hf

    return _cached("llguidance", lm.tokenizer, llguidance.hf.from_tokenizer)


def _hint(error: str) -> str:
    if "look-around" in error:
        return "Rewrite the 'pattern' without look-ahead/look-behind ((?=...), (?!...))."
    if "Invalid type" in error or "Unknown" in error:
        return "Use the JSON-schema types string, number, integer, boolean, array, object, null."
    return "Simplify the schema/grammar (llguidance's docs/json_schema.md lists what it supports)."


class GrammarConstraint:
    """The same protocol on llguidance: a JSON ``schema`` (dict) or a Lark ``grammar`` (str).

    A schema is written compactly, like ``json.dumps`` (unless it sets its own "x-guidance").
    llguidance computes each mask in well under a millisecond through its numpy API.
    ``forcing=False`` (default): every token that keeps the text valid is allowed, the same masks
    as ``RegexConstraint``. ``forcing=True``: a text the grammar forces may only be written in
    its canonical tokens (what the tokenizer would write), so the mask there allows ONE token and
    ``fast_generate`` writes such runs in one pass: on a tool call about half the tokens
    (``tool_calling.make_constraint`` uses it; serving engines do the same).
    """

    def __init__(
        self,
        lm: LM,
        *,
        schema: dict | None = None,
        grammar: str | None = None,
        forcing: bool = False,
    ) -> None:
        import llguidance
        import llguidance.numpy as llnp

        if (schema is None) == (grammar is None):
            raise ValueError("Give exactly one of schema= (a JSON schema dict) or grammar= (Lark).")
        if schema is not None:
            if not isinstance(schema, dict):
                raise ConstraintError(f"schema must be a dict (a JSON schema), got {schema!r}.")
            grammar = f"start: {json_rule(schema)}\n"
        text = ("" if forcing else '%llguidance {"no_forcing": true}\n') + grammar
        self.grammar = llguidance.LLMatcher.grammar_from_lark(text)
        self.tokenizer = llg_tokenizer(lm)
        error = llguidance.LLMatcher.validate_grammar(self.grammar, self.tokenizer)
        if error and not error.startswith("WARNING"):
            what = "schema" if schema is not None else "grammar"
            raise ConstraintError(
                f"llguidance cannot use this {what}: {error.strip()} {_hint(error)}"
            )
        self.matcher = llguidance.LLMatcher(self.tokenizer, self.grammar, log_level=0)
        self.vocab = _vocab_size(lm)
        self._bits = llnp.allocate_token_bitmask(1, self.tokenizer.vocab_size)  # (1, V/32) int32
        self._fill = llnp.fill_next_token_bitmask

    def reset(self) -> None:
        self.matcher.reset()

    def allowed(self) -> np.ndarray:
        """Bool ``(V,)`` from llguidance's bitmask (one bit per token, 32 tokens per int32)."""
        self._fill(self.matcher, self._bits)
        if self.matcher.is_error():
            raise ConstraintError(f"llguidance: {self.matcher.get_error()}")
        bits = np.unpackbits(self._bits[0].view(np.uint8), bitorder="little").astype(bool)
        mask = np.zeros(self.vocab, dtype=bool)  # (V,) the model's vocabulary
        n = min(self.vocab, len(bits))
        mask[:n] = bits[:n]
        return mask

    def advance(self, token_id: int) -> None:
        if not self.matcher.consume_token(int(token_id)):
            raise ConstraintError(
                f"Token {token_id} breaks the grammar: {self.matcher.get_error()}"
            )

    @property
    def done(self) -> bool:
        """True once the grammar is complete and only end-of-sequence may follow."""
        return bool(self.matcher.is_stopped())


def json_rule(schema: dict) -> str:
    """A Lark ``%json {...}`` rule, laid out like ``json.dumps`` unless the schema says else."""
    return "%json " + json.dumps({"x-guidance": JSON_LAYOUT} | schema)
