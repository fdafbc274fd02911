"""Tests for llmlab.tokenization.bpe: the textbook example, tiktoken id for id, round trips, training, errors."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmlab.tokenization.bpe import (
    GPT4_SPECIAL_TOKENS,
    GPT4_SPLIT_PATTERN,
    BasicTokenizer,
    RegexTokenizer,
    with_first_merges,
)
from llmlab.tokenization.bpe_training import get_stats, merge

# Strings that have tripped up tokenizers: case, spaces, numbers, code, emoji (incl. ZWJ and
# skin tones), CJK, Arabic, URLs, whitespace runs, contractions, \r\n, surrogates.
TRICKY = [
    "",
    "a",
    " ",
    "hello world",
    "Hello World HELLO WORLD hElLo",
    "ChatGPT chatgpt CHATGPT  ChatGPT",
    "   leading and trailing spaces   ",
    "tabs\tand\t\ttabs",
    "line\nbreaks\n\n\nand\r\nwindows\r\n\r\nlines\r",
    "trailing newline\n",
    "   \n\n  \n",
    "I'm you're he's they'll we've I'd don't I'M HE'S They'Ll",
    "it’s curly quotes ‘like’ “this”",
    "2024 12345.678 1,000,000 3.14159 -42 0x1F 1e-9 ١٢٣ ４５６",
    "def f(x):\n    if x:\n        return x ** 2\n\treturn None  # comment",
    "for (int i = 0; i < n; ++i) { s += a[i]; }",
    "https://example.com/path?q=tokens&lang=en#frag user@example.org",
    "😀 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ 🤖",
    "日本語のテキスト、中文文本，한국어 텍스트",
    "النص العربي يكتب من اليمين إلى اليسار",
    "Ελληνικά Русский текст עברית हिन्दी ไทย",
    "naïve café Straße Ångström ﬁ ligature e\u0301 (combining accent)",
    "zero\u200bwidth\u200cjoiners\u200d and \u00a0nbsp \u3000ideographic space",
    "!!!??? ... --- *** ### @@@ $$$ %%% ^^^",
    "<|endoftext|> looks special but is plain text here",
    "\ud83d\ude00 a surrogate pair written as two code points",
    "lone \ud800 high and \udfff low surrogates",
    "x" * 200 + " " + "ab" * 150,
    "\x00\x01\x7f control bytes \ufeff BOM \ufffd replacement",
]

WIKI = "aaabdaaabac"


@pytest.fixture(scope="module")
def gpt4(cl100k):
    """Our from-scratch encoder with cl100k_base's merges."""
    return RegexTokenizer.from_tiktoken(cl100k)


@pytest.fixture(scope="module")
def small():
    """A small RegexTokenizer trained on mixed text (with special tokens registered)."""
    text = " ".join(TRICKY[3:22]) * 3
    tok = RegexTokenizer()
    tok.train(text, 256 + 200)
    tok.register_special_tokens({"<|endoftext|>": 1000, "<|pad|>": 1001})
    return tok


# --- the two operations and the textbook example -----------------------------------------------


def test_get_stats_and_merge_docstring_examples():
    assert get_stats([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert merge([1, 2, 3, 1, 2], (1, 2), 4) == [4, 3, 4]
    assert merge([7, 7, 7], (7, 7), 9) == [9, 7]  # left to right, no overlap
    assert get_stats([1, 2], {(1, 2): 5}) == {(1, 2): 6}


@pytest.mark.parametrize("cls", [BasicTokenizer, RegexTokenizer])
def test_wikipedia_example_exact_merges(cls):
    """Wikipedia's BPE example: aa -> Z, ab -> Y, ZY -> X, so 'aaabdaaabac' becomes 'XdXac'."""
    tok = cls()
    tok.train(WIKI, 256 + 3)
    assert tok.merges == {(97, 97): 256, (97, 98): 257, (256, 257): 258}
    assert tok.vocab[256] == b"aa" and tok.vocab[257] == b"ab" and tok.vocab[258] == b"aaab"
    assert tok.encode(WIKI) == [258, 100, 258, 97, 99]
    assert tok.decode(tok.encode(WIKI)) == WIKI


def test_verbose_training_prints_merges(capsys):
    BasicTokenizer().train(WIKI, 259, verbose=True)
    out = capsys.readouterr().out
    assert "merge 1/3: (97, 97) -> 256 'aa'" in out and "'aaab'" in out


def test_regex_split_keeps_words_apart():
    tok = RegexTokenizer()
    assert tok.split("Hello world!!") == ["Hello", " world", "!!"]
    assert tok.split("12345") == ["123", "45"]
    assert tok.split("I'm") == ["I", "'m"]
    assert "".join(tok.split(TRICKY[8])) == TRICKY[8]


# --- exactly GPT-4's tokenizer ------------------------------------------------------------------


def test_pattern_and_specials_match_tiktoken(cl100k):
    """Our copy of GPT-4's pattern splits like the one tiktoken ships (whatever its spelling)."""
    ours, theirs = RegexTokenizer(GPT4_SPLIT_PATTERN), RegexTokenizer(cl100k._pat_str)
    for text in TRICKY:
        assert ours.split(text) == theirs.split(text)
    assert cl100k._special_tokens == GPT4_SPECIAL_TOKENS


def test_from_tiktoken_recovers_byte_permutation(gpt4, cl100k):
    assert sorted(gpt4.byte_ids) == list(range(256))
    assert gpt4.byte_ids != list(range(256))  # GPT-4 does not give byte b the id b ...
    assert gpt4.byte_ids[ord("!")] == 0  # ... e.g. "!" is token 0
    assert len(gpt4.merges) == len(cl100k._mergeable_ranks) - 256


@pytest.mark.parametrize("text", TRICKY, ids=range(len(TRICKY)))
def test_tricky_strings_match_tiktoken(gpt4, cl100k, text):
    assert gpt4.encode_ordinary(text) == cl100k.encode_ordinary(text)
    assert gpt4.encode(text, disallowed_special=()) == cl100k.encode(text, disallowed_special=())
    assert gpt4.decode(gpt4.encode_ordinary(text)) == cl100k.decode(cl100k.encode_ordinary(text))


def test_real_prose_matches_tiktoken(gpt4, cl100k):
    from pydoc_data import topics

    text = "\n\n".join(list(topics.topics.values())[:40])
    assert len(text) > 50_000
    assert gpt4.encode_ordinary(text) == cl100k.encode_ordinary(text)


# Any character Python's Unicode database knows. Left out: surrogates (not text; tested below) and
# code points unassigned in Python's database ("Cn"): a few of those were assigned in recent
# Unicode versions, and the `regex` module's tables (newer) can classify them as letters while
# the tables compiled into tiktoken (older) do not, e.g. U+323B0. Assigned characters agree.
ASSIGNED = st.characters(exclude_categories=("Cs", "Cn"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(ASSIGNED, max_size=60))
def test_any_text_matches_tiktoken(gpt4, cl100k, text):
    assert gpt4.encode_ordinary(text) == cl100k.encode_ordinary(text)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(" \t\n\r'sSltvm1234567890aA.!😀é日"), max_size=40))
def test_whitespace_and_contraction_soup_matches_tiktoken(gpt4, cl100k, text):
    """Random mixes of the characters the split pattern treats specially."""
    assert gpt4.encode_ordinary(text) == cl100k.encode_ordinary(text)


# --- round trips -------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_decode_encode_round_trip(gpt4, small, text):
    assert gpt4.decode(gpt4.encode_ordinary(text)) == text
    assert small.decode(small.encode_ordinary(text)) == text
    basic = BasicTokenizer()
    basic.merges, basic.vocab = {(97, 97): 256}, {**basic.vocab, 256: b"aa"}
    assert basic.decode(basic.encode(text)) == text


def test_surrogates_handled_like_tiktoken(gpt4, cl100k):
    assert gpt4.decode(gpt4.encode_ordinary("a\ud800b")) == "a\ufffdb"
    assert gpt4.encode_ordinary("\ud83d\ude00") == cl100k.encode_ordinary("😀")


def test_single_token_of_multibyte_character_decodes_to_replacement(gpt4, cl100k):
    ids = gpt4.encode_ordinary("🤖")
    assert ids == cl100k.encode_ordinary("🤖") and len(ids) > 1  # one emoji, several tokens
    assert gpt4.decode(ids[:1]) == "\ufffd" == cl100k.decode(ids[:1])
    assert gpt4.decode_bytes(ids) == "🤖".encode()


def test_cache_gives_same_ids_and_clears(gpt4):
    text = "the cache must not change the answer " * 3
    first = gpt4.encode_ordinary(text)
    assert gpt4._cache  # chunks remembered
    gpt4.clear_cache()
    assert not gpt4._cache
    assert gpt4.encode_ordinary(text) == first


def test_tiny_cache_bound_still_correct():
    t = RegexTokenizer(cache_size=2)
    t.train("hello hello world world wide web", 270)
    ids = t.encode_ordinary("hello world wide web hello")
    assert len(t._cache) <= 2
    assert t.decode(ids) == "hello world wide web hello"


# --- deterministic training ----------------------------------------------------------------------


def test_training_is_deterministic_and_compresses_unseen_text():
    from pydoc_data import topics

    text = topics.topics["if"] + topics.topics["while"] + topics.topics["for"]
    a, b = RegexTokenizer(), RegexTokenizer()
    a.train(text, 400)
    b.train(text, 400)
    assert a.merges == b.merges and a.vocab == b.vocab
    assert a.encode(text) == b.encode(text)
    # Merges learned on one text shorten a text the tokenizer never saw, and more merges more so.
    heldout = topics.topics["try"] + topics.topics["with"]
    n_bytes = len(heldout.encode("utf-8"))
    n_50, n_all = len(with_first_merges(a, 50).encode(heldout)), len(a.encode(heldout))
    assert len(with_first_merges(a, 0).encode(heldout)) == n_bytes  # no merges: one token per byte
    assert n_all < n_50 < 0.8 * n_bytes and n_all < 0.65 * n_bytes
    with pytest.raises(ValueError, match="merges learned"):
        with_first_merges(a, 145)


def test_incremental_training_equals_textbook_loop():
    """RegexTokenizer's trainer (recounts only changed chunks) learns what the textbook loop learns."""
    from pydoc_data import topics

    text = topics.topics["if"] + topics.topics["while"]
    basic = BasicTokenizer()  # the textbook loop: recount every pair, merge the best, repeat
    basic.train(text, 256 + 60)
    whole = RegexTokenizer(pattern=r"[\s\S]+")  # a "split" that keeps the text in one piece
    whole.train(text, 256 + 60)
    assert whole.merges == basic.merges


# --- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [BasicTokenizer, RegexTokenizer])
def test_bad_input_gives_clear_errors(cls):
    tok = cls()
    with pytest.raises(TypeError, match="str"):
        tok.train(b"bytes are not text", 300)
    with pytest.raises(ValueError, match=">= 256"):
        tok.train("some text", 255)
    with pytest.raises(ValueError, match=">= 256"):
        tok.train("some text", 300.0)
    with pytest.raises(ValueError, match="ran out of pairs"):
        tok.train("abc", 300)
    with pytest.raises(TypeError, match="str"):
        tok.encode(["not", "a", "string"])
    with pytest.raises(ValueError, match="Unknown token id"):
        tok.decode([99999])


# --- special tokens ----------------------------------------------------------------------------------


def test_special_tokens_like_tiktoken(gpt4, cl100k):
    text = "<|endoftext|>Hello<|fim_prefix|> world<|endofprompt|>"
    assert gpt4.encode(text, allowed_special="all") == cl100k.encode(text, allowed_special="all")
    some = {"<|endoftext|>"}
    assert gpt4.encode(text, allowed_special=some, disallowed_special=()) == cl100k.encode(
        text, allowed_special=some, disallowed_special=()
    )
    assert gpt4.encode(text, allowed_special="all")[0] == 100257
    for tok in (gpt4, cl100k):
        with pytest.raises(ValueError):
            tok.encode(text)  # by default a special-token string in user text is an error
    assert gpt4.decode(gpt4.encode(text, allowed_special="all")) == text


def test_register_special_tokens(small):
    ids = small.encode("hi<|endoftext|>there<|pad|>", allowed_special="all")
    assert 1000 in ids and 1001 in ids
    assert small.decode(ids) == "hi<|endoftext|>there<|pad|>"
    plain = small.encode("<|pad|>", disallowed_special=())
    assert 1001 not in plain and small.decode(plain) == "<|pad|>"
    with pytest.raises(ValueError, match="allowed_special"):
        small.encode("<|pad|>")
    with pytest.raises(ValueError, match="already the token"):
        small.register_special_tokens({"<|bad|>": 65})
    assert small.vocab_size == 256 + 200 + 2
