"""llmlab.chat.local: the local backend against llmlab.decoding.generation, the OpenAI backend against a fake server."""

from __future__ import annotations

import pytest

from llmlab.chat.local import IncrementalDecoder, LocalChat, load_chat, stream_with_stops
from llmlab.chat.openai_backend import OpenAIChat
from llmlab.chat.records import check_answerable_chat, cut_at_stop
from llmlab.decoding.context_window import ContextWindowError
from llmlab.decoding.generation import generate
from tests.doubles import FakeOpenAIServer

CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Name a colour."},
    ],
    [{"role": "user", "content": "Write a haiku about the sea, then stop."}],
]


MAX = 20  # tokens per greedy answer: the haiku runs to the limit, the others end on their own


@pytest.fixture(scope="module")
def chat(lm):
    return LocalChat(lm)


@pytest.fixture(scope="module")
def singles(chat):
    """``chat.complete`` of each of CHATS, one at a time, once for the module: the reference."""
    return [chat.complete(m, max_tokens=MAX) for m in CHATS]


# --- pure helpers -----------------------------------------------------------------------------


def test_check_messages_errors():
    with pytest.raises(ValueError, match="empty"):
        check_answerable_chat([])
    with pytest.raises(ValueError, match="role 'robot'"):
        check_answerable_chat([{"role": "robot", "content": "hi"}])
    with pytest.raises(ValueError, match="list of messages"):
        check_answerable_chat("hi")
    with pytest.raises(ValueError, match="'role' and 'content'"):
        check_answerable_chat([{"content": "hi"}])
    assert check_answerable_chat(CHATS[1]) == CHATS[1]


def test_cut_at_stop_and_stream_with_stops_agree():
    text = "Paris is the capital.\nQ: and Spain?\nA: Madrid"
    for pieces in (list(text), [text], [text[:20], text[20:23], text[23:]]):
        for stop in (["\nQ:"], ["capital", "\nQ:"], ["nowhere"], []):
            assert "".join(stream_with_stops(iter(pieces), stop)) == cut_at_stop(text, stop)[0]


def test_incremental_decoder_never_splits_a_character(lm):
    text = "Café ☕ naïve 🙂 日本語"
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) > len(text.split())  # some characters take several byte-level tokens
    decoder = IncrementalDecoder(lm.tokenizer)
    pieces = [decoder.push(i) for i in ids]
    assert "".join(pieces) == text
    assert not any("\ufffd" in p for p in pieces)
    # decoding each token alone would have produced broken characters
    assert any("\ufffd" in lm.tokenizer.decode([i]) for i in ids)


# --- local backend ----------------------------------------------------------------------------


def test_complete_is_greedy_generate_with_usage(singles, lm):
    res = singles[0]
    gen = generate(lm, CHATS[0], max_new_tokens=MAX, chat=True)
    assert res.text == gen.text
    assert res.usage.prompt_tokens == len(gen.prompt_ids) > 10  # the template adds tokens
    assert res.usage.completion_tokens == len(gen.token_ids)


def test_stream_matches_complete(chat, singles):
    for messages, single in zip(CHATS, singles, strict=True):
        pieces = list(chat.stream(messages, max_tokens=MAX))
        assert len(pieces) > 1  # it really streams
        assert "".join(pieces) == single.text


def test_stop_string_cuts_both_ways(chat, singles):
    full = singles[2].text
    words = full.split()
    assert len(words) >= 4
    stop = " " + words[2]
    cut = chat.complete(CHATS[2], max_tokens=MAX, stop=stop)
    assert cut.text == full[: full.index(stop)]
    assert cut.finish_reason == "stop"
    assert "".join(chat.stream(CHATS[2], max_tokens=MAX, stop=[stop])) == cut.text


def test_sampling_is_repeatable_with_a_seed(chat):
    a = "".join(chat.stream(CHATS[2], max_tokens=8, temperature=0.9, seed=3))
    b = "".join(chat.stream(CHATS[2], max_tokens=8, temperature=0.9, seed=3))
    assert a and a == b
    one = chat.complete(CHATS[2], max_tokens=8, temperature=0.9, seed=3)
    assert one.text == chat.complete(CHATS[2], max_tokens=8, temperature=0.9, seed=3).text


def test_batch_equals_one_at_a_time(chat, singles):
    batch = chat.complete_batch(CHATS, max_tokens=MAX)
    assert [b.text for b in batch] == [s.text for s in singles]
    assert [b.usage for b in batch] == [s.usage for s in singles]


def test_local_bad_input(chat):
    with pytest.raises(ValueError, match="temperature"):
        chat.complete(CHATS[0], temperature=-1)
    with pytest.raises(ValueError, match="max_tokens"):
        chat.complete(CHATS[0], max_tokens=0)
    with pytest.raises(ValueError, match="empty"):
        chat.stream([])
    with pytest.raises(ValueError, match="chats"):
        chat.complete_batch([])
    long = [{"role": "user", "content": "word " * 9000}]
    with pytest.raises(
        ContextWindowError, match=r"beyond .* context window .* Shorten the prompt by"
    ):
        chat.complete(long, max_tokens=8)
    with pytest.raises(ContextWindowError, match="tokens"):
        chat.stream(long, max_tokens=8)


# --- OpenAI-compatible backend against a fake server ------------------------------------------


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer() as fake:  # answers "Echo: <the last message>"
        yield fake


def test_openai_backend_plain_and_streamed(server):
    chat = OpenAIChat(server.url, api_key="sk-test", model="fake-model")
    res = chat.complete(CHATS[0], max_tokens=5, stop=["\n"])
    assert res.text == "Echo: What is the capital of France?"
    assert (res.usage.prompt_tokens, res.usage.completion_tokens) == (7, 3)
    sent = server.requests[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["auth"] == "Bearer sk-test"
    assert (sent["model"], sent["max_tokens"], sent["stop"]) == ("fake-model", 5, ["\n"])
    assert sent["messages"] == CHATS[0]
    pieces = list(chat.stream(CHATS[1]))
    assert len(pieces) == 3 and "".join(pieces) == "Echo: Name a colour."
    assert [r.text for r in chat.complete_batch(CHATS[:2])] == [
        "Echo: " + c[-1]["content"] for c in CHATS[:2]
    ]


def test_load_chat_chooses_backend(server, monkeypatch, lm):
    monkeypatch.setenv("LLMLAB_CHAT_BASE_URL", server.url)
    monkeypatch.setenv("LLMLAB_CHAT_MODEL", "fake-model")
    chat = load_chat()
    assert isinstance(chat, OpenAIChat)
    assert chat.complete(CHATS[0]).text.startswith("Echo:")
    assert isinstance(load_chat("local", lm=lm), LocalChat)
    monkeypatch.delenv("LLMLAB_CHAT_MODEL")
    with pytest.raises(ValueError, match="LLMLAB_CHAT_MODEL"):
        load_chat()
    with pytest.raises(ValueError, match="'local' or 'openai'"):
        load_chat("gpt")
    with pytest.raises(ValueError, match="max_tokens"):
        OpenAIChat(server.url, model="m").complete(CHATS[0], max_tokens=-1)
