"""``llmlab tune``: bad data is one line and exit 2 with nothing written; a run writes a peft
adapter that peft loads, is cached, and ``--adapter`` uses it. A tiny random Llama saved with
the real tokenizer stands in for the bundled model (``--model FOLDER``): milliseconds a step."""

from __future__ import annotations

import json

import pytest

from llmlab.cli import tune

GOOD = [
    {
        "messages": [
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": f"Capital number {i}?"},
            {"role": "assistant", "content": "Paris."},
        ]
    }
    for i in range(12)
]


@pytest.fixture(scope="module")
def tiny_folder(lm, tmp_path_factory):
    """A 2-block Llama (hidden 64, 256 positions) with SmolLM2's tokenizer, saved to a folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(lm.tokenizer),
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
    )
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path / "cache"))


def write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "the file is empty"),
        (['{"messages": [}'], "line 1: not valid JSON"),
        ([GOOD[0], {"messages": [{"role": "user", "content": "Hi"}]}], "line 2: no assistant"),
        ([{"prompt": "Hi", "completion": "Hello"}], 'like {"messages"'),
        ([{"messages": [{"role": "robot", "content": "Hi"}]}], "needs a role"),
        (
            [{"messages": [{"role": "user", "content": "Hi " * 300}, GOOD[0]["messages"][2]]}],
            "longer than the model's context window",
        ),
    ],
)
def test_bad_data_is_one_line_and_nothing_written(tmp_path, capsys, tiny_folder, rows, message):
    data = write(tmp_path / "data.jsonl", rows)
    out = tmp_path / "adapter"
    code = tune.cli([str(data), "--out", str(out), "--model", str(tiny_folder)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not out.exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--lr", "0"], "--lr"),
        (["--rank", "0"], "--rank"),
        (["--val-fraction", "1"], "--val-fraction"),
    ],
)
def test_bad_flags(tmp_path, capsys, flags, message):
    data = write(tmp_path / "data.jsonl", GOOD)
    assert tune.cli([str(data), "--out", str(tmp_path / "a"), *flags]) == 2
    assert message in capsys.readouterr().err


def test_out_folder_with_other_files_is_refused(tmp_path, capsys):
    data = write(tmp_path / "data.jsonl", GOOD)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "notes.txt").write_text("mine")
    assert tune.cli([str(data), "--out", str(tmp_path / "a")]) == 2
    assert "other files" in capsys.readouterr().err


def test_tune_writes_a_peft_adapter_then_reads_the_cache(tmp_path, capsys, tiny_folder):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    data = write(tmp_path / "data.jsonl", GOOD)
    out = tmp_path / "adapter"
    argv = [str(data), "--out", str(out), "--model", str(tiny_folder), "--lr", "1e-2"]
    assert tune.cli(argv + ["--top-blocks", "1", "--batch-size", "4"]) == 0
    printed = capsys.readouterr().out
    assert "validation loss" in printed and "from the cache" not in printed
    report = json.loads((out / "training_report.json").read_text())
    assert report["examples"] == 11 and report["steps"] == 3  # 1 of 12 held out; 11 / 4 -> 3
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["layers_to_transform"] == [1] and config["r"] == 8

    base = AutoModelForCausalLM.from_pretrained(tiny_folder)
    peft_model = PeftModel.from_pretrained(base, out)  # other tools load what we wrote
    ids = torch.tensor([[1, 2, 3, 4]])
    from llmlab.runtime.models import load_lm
    from llmlab.training.lora import apply_adapter

    ours = load_lm(str(tiny_folder))
    apply_adapter(ours.model, out)  # what --adapter does
    with torch.no_grad():
        assert torch.allclose(ours.model(ids).logits, peft_model(ids).logits, atol=1e-5)

    again = tmp_path / "again"
    assert (
        tune.cli(argv[:2] + [str(again)] + argv[3:] + ["--top-blocks", "1", "--batch-size", "4"])
        == 0
    )
    assert "from the cache" in capsys.readouterr().out
    assert (again / "adapter_model.safetensors").read_bytes() == (
        out / "adapter_model.safetensors"
    ).read_bytes()


def test_tool_calls_in_the_data_are_rendered_as_text(tmp_path, tiny_folder):
    spec = {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two numbers.",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                "required": ["a", "b"],
            },
        },
    }
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'},
    }
    row = {
        "tools": [spec],
        "messages": [
            {"role": "user", "content": "1 plus 2?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "3"},
            {"role": "assistant", "content": "3", "weight": 0},
        ],
    }
    from llmlab.training.chat_data import read_chat_jsonl

    chats = tune._plain_chats(read_chat_jsonl(write(tmp_path / "t.jsonl", [row])))
    (chat,) = chats
    assert chat[0]["role"] == "system" and "<tools>" in chat[0]["content"]
    assert chat[2]["content"].startswith("<tool_call>") and chat[2]["weight"] == 1
    assert chat[-1]["weight"] == 0
    out = tmp_path / "adapter"
    assert (
        tune.cli([str(tmp_path / "t.jsonl"), "--out", str(out), "--model", str(tiny_folder)]) == 0
    )


def test_adapter_flag_on_explore(tmp_path, capsys, tiny_folder):
    from llmlab.cli import explore

    data = write(tmp_path / "data.jsonl", GOOD)
    out = tmp_path / "adapter"
    assert tune.cli([str(data), "--out", str(out), "--model", str(tiny_folder)]) == 0
    capsys.readouterr()
    argv = ["Hi", "--steps", "2", "--model", str(tiny_folder)]
    assert explore.cli(argv + ["--adapter", str(out)]) == 0
    assert explore.cli(argv + ["--adapter", str(tmp_path / "nowhere")]) == 2
    assert "not an adapter folder" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["ask", "chat", "research", "serve"])
def test_every_model_command_takes_adapter_and_refuses_a_wrong_folder(command, tmp_path, capsys):
    import importlib

    module = importlib.import_module(f"llmlab.cli.{command}")
    positional = {"ask": [str(tmp_path), "q"], "chat": [str(tmp_path)], "research": ["wiki", "q"]}
    argv = [*positional.get(command, []), "--adapter", str(tmp_path / "nowhere")]
    assert module.cli(argv) == 2  # refused while parsing: before any index or model loads
    assert "not an adapter folder" in capsys.readouterr().err
