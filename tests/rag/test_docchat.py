"""Tests for llmlab.rag.docchat: citations, support checks, abstention, follow-ups, the window."""

from __future__ import annotations

import pytest

from llmlab.rag.docchat import (
    ABSTAIN,
    INSTRUCTION,
    DocChat,
    check_citations,
    check_support,
    is_follow_up,
    rewrite_query,
)
from llmlab.search.docs_index import open_index


class ScriptedChat:
    """A chat backend that streams a fixed reply and records what it was sent."""

    def __init__(self, reply: str) -> None:
        self.reply, self.sent = reply, []

    def stream(self, messages, max_tokens=256, temperature=0.0, stop=None, seed=None):
        self.sent.append(messages)
        return iter([w + " " for w in self.reply.split(" ")])

    def complete_batch(self, chats, max_tokens=256, temperature=0.0, stop=None, seed=None):
        from llmlab.chat.records import ChatResult, Usage

        self.sent += list(chats)
        return [ChatResult(self.reply, Usage(0, 0), "stop") for _ in chats]


def test_check_citations_removes_unretrieved_passages():
    assert check_citations("Yes [1][7].", 3) == ("Yes [1].", [7])
    assert check_citations("A [2, 9] and B [0].", 3) == ("A [2] and B.", [9, 0])
    assert check_citations("Nothing cited.", 3) == ("Nothing cited.", [])


def test_check_support_flags_unsupported_and_adds_missing_citations():
    passages = ["Bananas are yellow fruit grown in bunches.", "Python lists are mutable sequences."]
    text, checks = check_support(
        "Bananas are yellow [1]. Lists are mutable. Cats purr loudly [2].", passages
    )
    assert [c.supported for c in checks] == [True, True, False]
    assert checks[1].added and checks[1].cites == [2]
    assert "Lists are mutable [2]." in text
    assert checks[2].cites == [2] and checks[2].support < 0.5


def test_follow_ups_are_rewritten_with_the_topic():
    assert is_follow_up("and how do I undo that?")
    assert is_follow_up("What about tuples?")
    assert not is_follow_up("How do I copy a file in Python?")
    topic = "How do I install a package?"
    assert rewrite_query("and how do I undo that?", topic) == f"and how do I undo that? ({topic})"
    assert (
        rewrite_query("How do I copy a file in Python?", topic) == "How do I copy a file in Python?"
    )
    assert rewrite_query("and that?", None) == "and that?"


@pytest.fixture(scope="module")
def index(tmp_path_factory, embedder):
    import os

    root = tmp_path_factory.mktemp("docs")
    os.environ["LLMLAB_DOCS_CACHE"] = str(root.parent / "docs-cache")
    (root / "venv.md").write_text(
        "# Virtual environments\n\nCreate a virtual environment with `python -m venv .venv`. "
        "Activate it with `source .venv/bin/activate`.\n\nTo leave a virtual environment, run "
        "`deactivate`. To remove it, delete the .venv folder.\n"
    )
    (root / "files.txt").write_text("To copy a file in Python use shutil.copy(src, dst).\n")
    (root / "strings.rst").write_text(
        "Strings\n=======\n\nPython strings are immutable: "
        "methods such as upper() return a new string.\n"
    )
    yield open_index(root, embedder=embedder)[0]
    del os.environ["LLMLAB_DOCS_CACHE"]


def test_citations_always_point_at_retrieved_passages(index, lm):
    chat = ScriptedChat("Use shutil.copy(src, dst) [1]. See also [9].")
    bot = DocChat(index, chat, lm=lm, k=2)
    streamed = []
    ans = bot.ask("How do I copy a file in Python?", on_token=streamed.append)
    assert "".join(streamed).strip() == ans.raw
    assert ans.removed_citations == [9] and "[9]" not in ans.answer
    assert {c.n for c in ans.citations} <= {1, 2}
    for c in ans.citations:
        assert c.text == ans.hits[c.n - 1].chunk.text and c.source == ans.hits[c.n - 1].chunk.source
    assert ans.hits[0].chunk.source == "files.txt"
    assert ans.citations[0].source == "files.txt" and ans.citations[0].start_line == 1
    assert not ans.abstained and set(ans.to_json()) >= {
        "answer",
        "citations",
        "hits",
        "abstained",
        "timings",
    }


def test_prompt_is_exactly_what_the_model_reads(index, lm):
    from llmlab.decoding.chat_template import chat_text
    from llmlab.rag.answering import build_prompt

    chat = ScriptedChat("Delete the .venv folder [1].")
    bot = DocChat(index, chat, lm=lm, k=2)
    ans = bot.ask("How do I remove a virtual environment?")
    assert ans.prompt == chat_text(lm, chat.sent[0])
    passages = [f"({h.chunk.source}) {h.chunk.text}" for h in ans.hits]
    assert (
        ans.prompt
        == build_prompt(ans.query, passages, lm=lm, instruction=INSTRUCTION, prime="").text
    )


def test_abstains_on_an_off_topic_question_without_calling_the_model(index, lm):
    chat = ScriptedChat("Canberra [1].")
    ans = DocChat(index, chat, lm=lm).ask("What is the capital of Australia?")
    assert ans.abstained and ans.answer == ABSTAIN and ans.citations == [] and chat.sent == []
    assert ans.confidence < DocChat(index, chat, lm=lm).min_cosine


def test_follow_up_retrieval_and_window_truncation(index, lm):
    chat = ScriptedChat("Run python -m venv .venv [1].")
    bot = DocChat(index, chat, lm=lm, k=1)
    first = bot.ask("How do I create a virtual environment?")
    second = bot.ask("and how do I leave it?")
    assert second.query.endswith(f"({first.question})")
    assert second.hits[0].chunk.source == "venv.md"
    assert chat.sent[1][1:3] == [
        {"role": "user", "content": first.query},
        {"role": "assistant", "content": first.answer},
    ]
    small = DocChat(
        index, chat, lm=lm, k=1, window=len(lm.tokenizer(second.prompt)["input_ids"]) + 50
    )
    small.history = bot.history * 3  # six earlier messages: too many for the window
    before = list(small.history)
    third = small.ask("How do I copy a file in Python?")
    assert third.dropped and third.dropped == before[: len(third.dropped)]  # the oldest turns
    assert len(chat.sent[-1]) == 2 + len(before) - len(third.dropped)  # system + kept + question
    assert chat.sent[-1][1]["role"] == "user"  # the kept history starts with a question


def test_bad_input(index, lm):
    with pytest.raises(ValueError, match="question is empty"):
        DocChat(index, ScriptedChat("x"), lm=lm).ask("   ")
    with pytest.raises(ValueError, match="k .* >= 1"):
        DocChat(index, ScriptedChat("x"), lm=lm, k=0)


def test_real_model_streams_an_answer(index, lm):
    bot = DocChat(index, lm=lm, k=2, max_new_tokens=12)
    pieces = []
    ans = bot.ask("How do I copy a file in Python?", on_token=pieces.append)
    assert len(pieces) >= 2 and "".join(pieces).strip() == ans.raw
    assert ans.timings["first_token_s"] <= ans.timings["total_s"]


def test_ask_many_matches_ask_and_abstains_per_question(index, lm):
    chat = ScriptedChat("Use shutil.copy [1]. Wrong [4].")
    bot = DocChat(index, chat, lm=lm, k=2)
    many = bot.ask_many(["How do I copy a file in Python?", "What is the capital of Australia?"])
    one = DocChat(index, ScriptedChat(chat.reply), lm=lm, k=2).ask(
        "How do I copy a file in Python?"
    )
    assert len(chat.sent) == 1  # the off-topic question never reached the model
    assert many[0].answer == one.answer and many[0].prompt == one.prompt
    assert many[0].removed_citations == [4] and many[1].abstained and bot.history == []


def test_chat_box_builds(index, lm):
    from llmlab.views.docchat_box import chat_box

    box = chat_box(DocChat(index, ScriptedChat("Use shutil.copy [1]."), lm=lm, k=1))
    (question, button), answer, sources = box.children[0].children, *box.children[1:]
    question.value = "How do I copy a file in Python?"
    button.click()
    assert "shutil.copy" in answer.value and sources.get_title(0) == "[1] files.txt:1-1"
