"""llmlab.training.sft: the loss mask, the loss against transformers', the loop, the cache."""

from __future__ import annotations

import pytest
import torch

from llmlab.runtime.models import LM
from llmlab.training.adapter_cache import model_identity
from llmlab.training.lora import (
    add_lora,
    lora_layers,
    lora_parameters,
    remove_lora,
    using_adapter,
)
from llmlab.training.sft import (
    REPORT_FILE,
    SFTSettings,
    batch_loss,
    encode_chat,
    evaluate_loss,
    finetune,
    make_batches,
    train,
)
from tests.doubles import tiny_llama

CHAT = [
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris."},
]


@pytest.fixture(scope="module")
def tiny(lm):
    """A 2-block random Llama (hidden 64) with the real SmolLM2 tokenizer: fast, same template."""
    model = tiny_llama(lm.tokenizer, positions=128)
    return LM(model=model, tokenizer=lm.tokenizer, name="tiny-llama")


def test_encode_chat_is_the_template_and_counts_the_answer(tiny):
    tok = tiny.tokenizer
    t = encode_chat(tiny, CHAT)
    text = tok.apply_chat_template(CHAT, tokenize=False)
    assert tok.decode(t.ids) == text.rstrip("\n") + "\n"  # the exact template text
    assert t.ids == tok(text, add_special_tokens=False)["input_ids"]
    answer = [i for i, c in zip(t.ids, t.counted, strict=True) if c]
    assert tok.decode(answer) == "Paris.<|im_end|>"  # the answer and the stop token, nothing else

    everything = encode_chat(tiny, CHAT, mask_prompt=False)
    assert everything.ids == t.ids and all(everything.counted)

    no_stop = encode_chat(tiny, CHAT, end_of_turn=False)
    assert tok.decode(no_stop.ids).endswith("assistant\nParis.")
    assert tok.convert_tokens_to_ids("<|im_end|>") != no_stop.ids[-1]

    two_turns = (
        CHAT
        + [{"role": "user", "content": "And Italy?"}]
        + [{"role": "assistant", "content": "Rome."}]
    )
    t2 = encode_chat(tiny, two_turns)
    counted = tok.decode([i for i, c in zip(t2.ids, t2.counted, strict=True) if c])
    assert counted == "Paris.<|im_end|>Rome.<|im_end|>"
    with pytest.raises(ValueError, match="assistant"):
        encode_chat(tiny, CHAT[:1])


def test_batch_loss_matches_transformers(tiny):
    rows = [
        encode_chat(tiny, CHAT),
        encode_chat(tiny, CHAT[:1] + [{"role": "assistant", "content": "It is Paris, of course."}]),
    ]
    (batch,) = make_batches(rows, batch_size=2)
    assert batch.ids.shape[0] == 2 and batch.tokens == sum(len(r) for r in rows)
    labels = batch.ids.masked_fill(~batch.counted, -100)
    with torch.no_grad():
        expected = tiny.model(batch.ids, attention_mask=batch.attention, labels=labels).loss
        ours = batch_loss(tiny.model, batch)
    assert torch.allclose(ours, expected, atol=1e-5)


def test_a_shared_prefix_gives_the_same_loss_and_gradients(tiny):
    system = {"role": "system", "content": "You answer with one word, the capital city. " * 2}
    chats = [
        [system, {"role": "user", "content": q}, {"role": "assistant", "content": a}]
        for q, a in (
            ("France?", "Paris."),
            ("Italy?", "Rome."),
            ("Peru, in South America?", "Lima."),
        )
    ]
    rows = [encode_chat(tiny, c) for c in chats]
    (plain,) = make_batches(rows, batch_size=3)
    (shared,) = make_batches(rows, batch_size=3, share_prefix=True)
    assert plain.prefix is None and shared.prefix is not None and len(shared.prefix) >= 16
    assert shared.tokens == plain.tokens - 2 * len(shared.prefix)  # the prefix read once, not 3x
    assert shared.counted_tokens == plain.counted_tokens
    add_lora(tiny.model, r=2, alpha=4)
    try:
        grads = []
        for batch in (plain, shared):
            tiny.model.zero_grad()
            loss = batch_loss(tiny.model, batch)
            loss.backward()
            grads.append((loss.detach(), [p.grad.clone() for p in lora_parameters(tiny.model)]))
        (l1, g1), (l2, g2) = grads
        assert torch.allclose(l1, l2, atol=1e-5)
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(g1, g2, strict=True))
    finally:
        remove_lora(tiny.model)


def test_make_batches_groups_by_length():
    from llmlab.training.sft import Tokenized

    rows = [Tokenized(ids=[1] * n, counted=[True] * n) for n in (5, 50, 6, 51)]
    batches = make_batches(rows, batch_size=2, shuffle=False)
    assert [tuple(b.ids.shape) for b in batches] == [(2, 6), (2, 51)]  # little padding
    with pytest.raises(ValueError, match="No training examples"):
        make_batches([], 2)


def test_train_lowers_the_loss_and_respects_a_budget(tiny):
    torch.manual_seed(0)
    add_lora(tiny.model, r=4, alpha=8)
    try:
        batches = make_batches([encode_chat(tiny, CHAT)] * 4, batch_size=4)
        before = evaluate_loss(tiny.model, batches)
        report = train(tiny.model, batches, epochs=20, lr=1e-2, progress=False)
        assert report.steps == 20 and report.tokens == 20 * batches[0].tokens
        assert evaluate_loss(tiny.model, batches) < 0.5 * before  # it memorises one chat
        stopped = train(tiny.model, batches, epochs=3, time_budget=0.0, progress=False)
        assert stopped.stopped_by_budget and stopped.steps == 0
    finally:
        remove_lora(tiny.model)


def test_finetune_trains_once_then_reads_the_cache(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path))
    chats = [CHAT] * 4
    settings = SFTSettings(r=2, alpha=4, layers=(1,), lr=1e-2, epochs=2, batch_size=2)
    base = model_identity(tiny.model)
    first = finetune(tiny, chats, settings, validation=[CHAT], progress=False)
    assert not first.from_cache and first.report["steps"] == 4
    assert first.report["val_loss_after"] < first.report["val_loss_before"]
    assert (first.folder / REPORT_FILE).is_file() and first.folder.parent.parent == tmp_path
    assert not lora_layers(tiny.model) and model_identity(tiny.model) == base  # left as it was

    again = finetune(tiny, chats, settings, validation=[CHAT], progress=False)
    assert again.from_cache and again.folder == first.folder and again.report == first.report
    other = finetune(tiny, chats, SFTSettings(r=1, alpha=2, layers=(1,)), progress=False)
    assert other.folder != first.folder

    with using_adapter(tiny.model, first.folder):
        assert len(lora_layers(tiny.model)) == 7
    assert not lora_layers(tiny.model)
