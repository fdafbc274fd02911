"""Tests for llmlab.tokenization.tokens and llmlab.views.token_view: pieces from any tokenizer, counts, cost, speed, HTML."""

from __future__ import annotations

import pytest

from llmlab.tokenization.bpe import RegexTokenizer
from llmlab.tokenization.tokens import count_tokens, encoding_speeds, token_cost, token_pieces
from llmlab.views.token_view import show_tokens, token_html


@pytest.fixture(scope="module")
def gpt4(cl100k):
    """Our from-scratch encoder with cl100k_base's merges."""
    return RegexTokenizer.from_tiktoken(cl100k)


# --- looking at tokens ---------------------------------------------------------------------------------


def test_token_pieces_tiktoken(cl100k):
    pieces = token_pieces("Hello world", cl100k)
    assert [p.id for p in pieces] == [9906, 1917]
    assert [p.text for p in pieces] == ["Hello", " world"]
    emoji = token_pieces("🤖", cl100k)
    assert len(emoji) > 1 and emoji[0].text.startswith("\\x")  # part of a character shows as \xNN
    assert count_tokens("Hello world", cl100k) == 2


def test_token_pieces_ours_equals_tiktoken(gpt4, cl100k):
    text = "Tokenizers split <|endoftext|> text"
    assert token_pieces(text, gpt4) == token_pieces(text, cl100k)


def test_token_pieces_wordpiece(embedder):
    pieces = token_pieces("Tokenization is unbelievable", embedder.tokenizer)
    texts = [p.text for p in pieces]
    assert texts[0] == "token" and any(t.startswith("##") for t in texts)
    with_specials = token_pieces("hi", embedder.tokenizer, add_special_tokens=True)
    assert [p.text for p in with_specials] == ["[CLS]", "hi", "[SEP]"]


def test_token_pieces_byte_level_hf(lm):
    tok = lm.tokenizer
    text = "Hello world, ChatGPT!\n  indented"
    pieces = token_pieces(text, tok)
    assert "".join(p.text for p in pieces) == text  # 'Ġ'/'Ċ' turned back into spaces/newlines
    assert [p.id for p in pieces] == tok(text, add_special_tokens=False)["input_ids"]
    chat = token_pieces("<|im_start|>user\nHi<|im_end|>", tok)
    assert chat[0].text == "<|im_start|>" and chat[0].id == tok.convert_tokens_to_ids(
        "<|im_start|>"
    )


def test_token_html_offline_and_escaped(cl100k):
    view = show_tokens("a <b>bold</b> move", cl100k)
    page = view._repr_html_()
    assert "<script" not in page and "http" not in page  # renders offline, nothing fetched
    assert "&lt;" in page and "&gt;" in page and "<b>" not in page  # escaped, not interpreted
    assert page.count('title="id ') == len(view.pieces) == len(view.ids)
    assert f'title="id {view.ids[0]}"' in page
    assert "·" in token_html(view.pieces) and "·" not in token_html(
        view.pieces, show_whitespace=False
    )
    assert repr(view).startswith("[a| <|b|>") and "tokens)" in repr(view)


def test_show_tokens_defaults_to_cl100k():
    assert show_tokens("hello world").ids == [15339, 1917]
    assert count_tokens("hello world") == 2


def test_token_cost():
    assert token_cost(2_000_000, 2.5) == pytest.approx(5.0)
    assert token_cost(0) == 0
    with pytest.raises(ValueError, match=">= 0"):
        token_cost(-1)
    with pytest.raises(TypeError):
        token_pieces(123, object())
    with pytest.raises(TypeError, match="tokenize with"):
        token_pieces("x", object())


def test_count_tokens_is_what_tiktoken_counts_and_languages_differ(cl100k):
    from pydoc_data import topics

    prose = topics.topics["if"]
    assert count_tokens(prose, cl100k) == len(cl100k.encode(prose))
    english, hindi = "The cat is sleeping on the sofa.", "बिल्ली सोफे पर सो रही है।"
    # per character, Hindi costs several times what English does: estimate from tokens, not characters
    per_char = {s: count_tokens(s, cl100k) / len(s) for s in (english, hindi)}
    assert per_char[hindi] > 2 * per_char[english]


def test_encoding_speeds_split_is_a_floor_and_cache_helps(gpt4, cl100k):
    from pydoc_data import topics

    text = "\n\n".join(list(topics.topics.values())[:60])  # about 100 KB of English prose
    speeds = encoding_speeds(gpt4, text, reference=cl100k, repeat=3)
    assert set(speeds) == {"reference", "cold", "warm", "split"}
    assert speeds["split"] > 1.5 * speeds["cold"]  # the split is only part of a cold encode's work
    assert speeds["warm"] > 1.5 * speeds["cold"]  # repeated words are looked up, not merged
    assert "reference" not in encoding_speeds(gpt4, "a few words", repeat=1)
    with pytest.raises(ValueError, match="RegexTokenizer"):
        encoding_speeds(cl100k, text)
    with pytest.raises(ValueError, match="non-empty"):
        encoding_speeds(gpt4, "")
    with pytest.raises(ValueError, match="repeat"):
        encoding_speeds(gpt4, text, repeat=0)
