"""Tests for llmlab.rag.docchat: the three modes, abstention, checked citations, follow-ups."""

from __future__ import annotations

import pytest

from llmlab.decoding.chat_template import chat_text
from llmlab.rag.docchat import (
    ABSTAIN,
    INSTRUCTION,
    NOT_SUPPORTED,
    DocChat,
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
        return [
            ChatResult(
                text=self.reply,
                usage=Usage(prompt_tokens=0, completion_tokens=0),
                finish_reason="stop",
            )
            for _ in chats
        ]


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


VENV = (
    "# Virtual environments\n\nCreate a virtual environment with `python -m venv .venv`. "
    "Activate it with `source .venv/bin/activate`.\n\nTo leave a virtual environment, run "
    "`deactivate`. To remove it, delete the .venv folder.\n"
)


@pytest.fixture(scope="module")
def index(tmp_path_factory, embedder):
    import os

    root = tmp_path_factory.mktemp("docs")
    os.environ["LLMLAB_DOCS_CACHE"] = str(root.parent / "docs-cache")
    (root / "venv.md").write_text(VENV)
    (root / "files.txt").write_text(
        "Copying\n\nTo copy a file in Python use shutil.copy(src, dst).\n\n"
        "To delete a file, call os.remove(path).\n"
    )
    (root / "strings.rst").write_text(
        "Strings\n=======\n\nPython strings are immutable: "
        "methods such as upper() return a new string.\n"
    )
    yield open_index(root, embedder=embedder)[0]
    del os.environ["LLMLAB_DOCS_CACHE"]


def test_extract_mode_quotes_the_lines_that_answer_and_loads_no_model(index):
    bot = DocChat(index, k=2)  # no lm, no chat: the extract mode must not need them
    ans = bot.ask("How do I leave a virtual environment?")
    assert not ans.abstained and ans.mode == "extract" and bot._lm is None and bot._chat is None
    assert "deactivate" in ans.answer and len(ans.citations) == 1
    p = ans.citations[0].passage
    assert p.source == "venv.md" and p.text == ans.answer  # the answer IS the cited lines
    assert VENV.splitlines()[p.first_line - 1 : p.last_line] == ans.answer.splitlines()
    assert ans.confidence >= bot.min_score and ans.raw == "" and ans.prompt == ""


def test_abstains_on_an_off_topic_question_without_calling_a_model(index):
    chat = ScriptedChat("Canberra [1].")
    for mode in ("extract", "generate"):
        ans = DocChat(index, chat, mode=mode).ask("What is the capital of Australia?")
        assert ans.abstained and ans.answer == ABSTAIN and ans.citations == []
        assert ans.confidence < DocChat(index).min_score
    assert chat.sent == []


def test_a_follow_up_is_not_a_repeat(index):
    bot = DocChat(index, k=2)
    first = bot.ask("How do I copy a file in Python?")
    second = bot.ask("and how do I delete it?")
    assert second.query.endswith(f"({first.question})")
    assert "shutil.copy" in first.answer and "os.remove" in second.answer
    assert second.answer != first.answer
    bot.reset()
    assert bot.shown == set() and bot.topic is None


def test_generate_mode_keeps_only_supported_sentences_and_cites_their_lines(index, lm):
    chat = ScriptedChat(
        "Run `deactivate` to leave it [1]. Use the --force-exit flag to quit [1]. See also [9]."
    )
    bot = DocChat(index, chat, lm=lm, k=2, mode="generate")
    streamed = []
    ans = bot.ask("How do I leave a virtual environment?", on_token=streamed.append)
    assert "".join(streamed).strip() == ans.raw and ans.generated
    assert ans.removed_citations == [9] and "[9]" not in ans.answer
    assert "deactivate" in ans.answer and "--force-exit" not in ans.answer  # invented: left out
    assert "Use the --force-exit flag to quit [1]." in ans.unsupported
    (c,) = ans.citations
    assert c.passage.source == "venv.md" and "deactivate" in c.passage.text
    assert c.passage.first_line == 5  # the line that supports the sentence, not the chunk's first
    assert ans.prompt == chat_text(lm, chat.sent[0])


def test_generated_answer_with_nothing_supported_is_not_shown(index, lm):
    chat = ScriptedChat("Install the venv-tools package and run venv-exit --now [1].")
    ans = DocChat(index, chat, lm=lm, k=2, mode="generate").ask(
        "How do I leave a virtual environment?"
    )
    assert ans.abstained and ans.answer == NOT_SUPPORTED and ans.citations == []
    assert ans.unsupported and ans.raw.startswith("Install")


def test_prompt_is_exactly_what_the_model_reads(index, lm):
    from llmlab.rag.answering import build_prompt

    chat = ScriptedChat("Delete the .venv folder [1].")
    bot = DocChat(index, chat, lm=lm, k=2, mode="generate")
    ans = bot.ask("How do I remove a virtual environment?")
    assert ans.prompt == chat_text(lm, chat.sent[0])
    passages = [f"({h.passage.source}) {h.text}" for h in ans.hits]
    assert (
        ans.prompt
        == build_prompt(ans.query, passages, lm=lm, instruction=INSTRUCTION, prime="").text
    )


def test_generate_mode_window_truncation(index, lm):
    chat = ScriptedChat("Run python -m venv .venv [1].")
    bot = DocChat(index, chat, lm=lm, k=1, mode="generate")
    first = bot.ask("How do I create a virtual environment?")
    second = bot.ask("and how do I leave it?")
    assert chat.sent[1][1:3] == [
        {"role": "user", "content": first.query},
        {"role": "assistant", "content": first.answer},
    ]
    small = DocChat(
        index,
        chat,
        lm=lm,
        k=1,
        mode="generate",
        window=len(lm.tokenizer(second.prompt)["input_ids"]) + 50,
    )
    small.history = bot.history * 3  # six earlier messages: too many for the window
    before = list(small.history)
    third = small.ask("How do I copy a file in Python?")
    assert third.dropped and third.dropped == before[: len(third.dropped)]  # the oldest turns
    assert len(chat.sent[-1]) == 2 + len(before) - len(third.dropped)  # system + kept + question
    assert chat.sent[-1][1]["role"] == "user"  # the kept history starts with a question


def test_bad_input(index):
    with pytest.raises(ValueError, match="question is empty"):
        DocChat(index).ask("   ")
    with pytest.raises(ValueError, match="k .* >= 1"):
        DocChat(index, k=0)
    with pytest.raises(ValueError, match="mode must be one of extract, quote, generate"):
        DocChat(index, mode="guess")


def test_real_model_quote_mode_copies_one_of_the_units(index, lm):
    ans = DocChat(index, lm=lm, k=2, mode="quote").ask("How do I copy a file in Python?")
    assert not ans.abstained and ans.citations[0].passage.text == ans.answer
    text = (index.folder / ans.citations[0].passage.source).read_text()
    assert ans.answer in text  # a quote, whatever the model chose


def test_ask_many_matches_ask_and_abstains_per_question(index, lm):
    chat = ScriptedChat("Use shutil.copy [1]. Wrong [4].")
    bot = DocChat(index, chat, lm=lm, k=2, mode="generate")
    many = bot.ask_many(["How do I copy a file in Python?", "What is the capital of Australia?"])
    one = DocChat(index, ScriptedChat(chat.reply), lm=lm, k=2, mode="generate").ask(
        "How do I copy a file in Python?"
    )
    assert len(chat.sent) == 1  # the off-topic question never reached the model
    assert many[0].answer == one.answer and many[0].prompt == one.prompt
    assert many[0].removed_citations == [4] and many[1].abstained and bot.history == []
    extracted = DocChat(index, k=2).ask_many(["How do I copy a file in Python?"])
    assert "shutil.copy" in extracted[0].answer


def test_chat_box_shows_markdown(index):
    from llmlab.views.docchat_box import chat_box

    box = chat_box(DocChat(index, k=2))
    (question, button), answer, sources = box.children[0].children, *box.children[1:]
    question.value = "How do I copy a file in Python?"
    button.click()
    markdown = answer.outputs[-1]["data"]["text/markdown"]
    assert markdown.startswith("**From `files.txt:") and "> To copy a file" in markdown
    assert sources.get_title(0).startswith("[1] files.txt:")
    question.value = "What is the capital of Australia?"
    button.click()
    assert ABSTAIN in answer.outputs[-1]["data"]["text/markdown"] and not sources.children
