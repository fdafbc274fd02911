"""llmlab.training.chat_data: OpenAI's fine-tuning JSONL, checked line by line; the split."""

from __future__ import annotations

import json

import pytest

from llmlab.training.chat_data import read_chat_jsonl, split_validation

CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}


def test_reads_chats_and_tools(tmp_path):
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    rows = [CHAT, "", {**CHAT, "tools": tools}]
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) if r else "" for r in rows))
    examples = read_chat_jsonl(path)
    assert [e.line for e in examples] == [1, 3] and examples[1].tools == tools


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("[1, 2]", "line 1: each line must be an object"),
        ('{"messages": []}', "empty"),
        ('{"messages": [{"role": "assistant", "content": 3}]}', "must be text"),
        (
            '{"messages": [{"role": "user", "content": "a"}, '
            '{"role": "assistant", "content": "b", "weight": 0}]}',
            "no assistant message to learn from",
        ),
    ],
)
def test_bad_files_name_the_line(tmp_path, text, message):
    path = tmp_path / "d.jsonl"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_chat_jsonl(path)


def test_split_is_seeded_and_holds_out_a_share():
    items = list(range(50))
    train, val = split_validation(items, 0.1, seed=3)
    assert len(val) == 5 and sorted(train + val) == items
    assert split_validation(items, 0.1, seed=3) == (train, val)
    assert split_validation(items[:5], 0.5) == (items[:5], [])  # too few to hold any out
    with pytest.raises(ValueError, match="fraction"):
        split_validation(items, 1.0)
