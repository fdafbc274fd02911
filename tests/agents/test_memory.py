"""Tests for llmlab.agents.memory (window, summary, vector, SQLite memories) and llmlab.agents.memory_eval."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llmlab.agents.memory import (
    MESSAGE_OVERHEAD,
    SummaryMemory,
    WindowMemory,
    extractive_summary,
    token_counter,
    update_summaries,
)
from llmlab.agents.memory_eval import recall_by_budget, recalled, replay, synthetic_conversation
from llmlab.agents.vector_memory import SQLiteMemory, VectorMemory, preload_vectors
from llmlab.evaluation.metrics import wilson_ci
from llmlab.search.semantic_index import ModelMismatchError
from tests.doubles import WordEmbedder

ROOT = Path(__file__).resolve().parents[2]

CHAT = [
    ("user", "Hi! I just moved to a new flat."),
    ("assistant", "Congratulations! How do you like it?"),
    ("user", "My locker code at the gym is 4812."),
    ("assistant", "Got it, I'll keep that in mind."),
    ("user", "The weather was awful today, rain all afternoon."),
    ("assistant", "Rainy days are good for reading."),
    ("user", "My sister's name is Ines."),
    ("assistant", "Nice name."),
    ("user", "I watched a documentary about whales last night."),
    ("assistant", "Whales are fascinating animals."),
]


def words(text: str) -> int:
    """A tokenizer-free counter for fast tests: one token per word."""
    return len(text.split())


def fill(memory, turns=CHAT):
    for role, content in turns:
        memory.add(role, content)
    return memory


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    """Embedding cache files go to a temporary folder."""
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path / "cache"))


def test_token_counter_matches_tiktoken(cl100k):
    assert token_counter()("hello world") == len(cl100k.encode("hello world")) == 2


def test_window_keeps_the_newest_turns_that_fit():
    mem = fill(WindowMemory(count=words))
    budget = words(CHAT[-1][1]) + words(CHAT[-2][1]) + 2 * MESSAGE_OVERHEAD + 1
    ctx = mem.context("anything", budget)
    assert [m["content"] for m in ctx] == [c for _, c in CHAT[-2:]]  # a third turn would not fit
    assert mem.tokens(ctx) <= budget
    assert not any(recalled(ctx, f) for f in synthetic_conversation().facts)
    everything = mem.context("anything", 10_000)
    assert [(m["role"], m["content"]) for m in everything] == CHAT
    assert len(WindowMemory(max_turns=3, count=words).context("x", 10_000)) == 0
    assert len(fill(WindowMemory(max_turns=3, count=words)).context("x", 10_000)) == 3
    assert mem.cost.context_calls == 2 and mem.cost.context_tokens == mem.tokens(ctx) + mem.tokens(
        everything
    )


def test_extractive_summary_copies_user_sentences_with_rare_words():
    turns = [{"role": r, "content": c} for r, c in CHAT]
    summary = extractive_summary(turns, 20, words)
    assert 10 < words(summary) <= 20
    kept = [c for r, c in CHAT if r == "user" and c in summary]  # whole user sentences, verbatim
    assert " ".join(kept) == summary  # in conversation order
    conv = synthetic_conversation(seed=0)  # templated filler repeats its words: facts are rarer
    summary = extractive_summary(conv.turns, 64, words)
    assert sum(f.text in summary for f in conv.facts) >= 4


def test_summary_memory_extractive_then_recent_turns():
    mem = fill(SummaryMemory(every=6, summary_tokens=16, count=words))
    assert mem.due
    ctx = mem.context("What is my locker code?", 60)
    assert not mem.due and mem.summarized == len(CHAT)
    turns = [{"role": r, "content": c} for r, c in CHAT]
    assert ctx == [
        {
            "role": "system",
            "content": "Summary of the earlier conversation: "
            + extractive_summary(turns, 16, words),
        }
    ]
    assert mem.tokens(ctx) <= 60 and mem.cost.upkeep_tokens == 0
    mem.add("user", "Also, our dog is called Pepper.")
    assert mem.context("x", 60)[-1]["content"] == "Also, our dog is called Pepper."


class FakeChat:
    """Records the summary requests; answers each with the last line it was given."""

    def __init__(self):
        self.batches = []

    def complete_batch(self, chats, max_tokens=64):
        from llmlab.chat.records import ChatResult, Usage

        self.batches.append(chats)
        text = [c[-1]["content"].split("New lines:\n")[1].split("\n")[0][2:] for c in chats]
        return [
            ChatResult(
                text=t, usage=Usage(prompt_tokens=100, completion_tokens=10), finish_reason="stop"
            )
            for t in text
        ]


def test_lm_summaries_are_batched_and_their_tokens_counted():
    chat = FakeChat()
    mems = [fill(SummaryMemory(chat, every=4, count=words), CHAT[i:]) for i in range(3)]
    assert update_summaries(mems) == 3 and len(chat.batches) == 1 and len(chat.batches[0]) == 3
    request = chat.batches[0][0][-1]["content"]
    assert "Hi! I just moved" in request and "Congratulations" not in request  # user lines only
    assert (
        mems[0].summary == "Hi! I just moved to a new flat." and mems[0].cost.upkeep_tokens == 110
    )
    assert mems[0].cost.tokens_per_turn == pytest.approx(110 / len(CHAT))
    single = fill(SummaryMemory(chat, every=4, count=words))
    ctx = single.context("q", 50)  # due: the update runs now, before the context is built
    assert len(chat.batches) == 2 and ctx[0]["content"].endswith("Hi! I just moved to a new flat.")


def test_vector_memory_finds_the_fact(embedder):
    mem = fill(VectorMemory(k=2, embedder=embedder, count=words))
    hits = mem.search("What is my locker code at the gym?")
    assert hits[0][0] == 2 and hits[0][1] > hits[1][1]
    ctx = mem.context("What is my locker code at the gym?", 40)
    assert len(ctx) == 1 and "4812" in ctx[0]["content"] and mem.tokens(ctx) <= 40
    assert "Ines" in mem.context("What is my sister called?", 40)[0]["content"]
    # vectors are the same as embedding each turn alone
    alone = embedder.encode([CHAT[4][1]], normalize_embeddings=True)[0]
    assert np.allclose(mem.vectors[4], alone, atol=1e-5)


def test_preload_embeds_once_and_searches_only_what_was_told():
    emb = WordEmbedder()
    mems = [VectorMemory(k=2, embedder=emb, count=words) for _ in range(3)]
    texts = [c for _, c in CHAT] + ["What is my locker code at the gym?"]
    assert preload_vectors(mems + [WindowMemory(count=words)], texts + texts[:3]) == len(texts)
    assert emb.calls == [texts]  # one batch of distinct texts, for all three memories
    fill(mems[0], CHAT[:2])  # told nothing about the locker yet
    hits = mems[0].search("What is my locker code at the gym?")
    assert sorted(i for i, _ in hits) == [0, 1] and len(emb.calls) == 1  # looked up, not embedded
    fill(mems[1])
    ctx = mems[1].context("What is my locker code at the gym?", 40)
    assert "4812" in ctx[0]["content"] and len(emb.calls) == 1
    alone = WordEmbedder().encode([CHAT[2][1]])[0]  # preloaded = embedding the turn alone
    alone /= np.linalg.norm(alone)  # the memory stores unit vectors
    assert np.allclose(mems[1].vectors[2], alone)
    fill(mems[2]).search("Something never preloaded")  # a new query is embedded on its own
    assert emb.calls[-1] == ["Something never preloaded"] and len(emb.calls) == 2


def test_sqlite_round_trip_across_connections(tmp_path, embedder):
    path = tmp_path / "memory.sqlite"
    with SQLiteMemory(path, session="monday", embedder=embedder, count=words) as first:
        fill(first)
        assert "4812" in first.context("What is my locker code?", 60)[0]["content"]
    second = SQLiteMemory(path, session="tuesday", embedder=embedder, count=words)
    assert [(t["role"], t["content"]) for t in second.turns] == CHAT
    assert np.allclose(second.vectors, first.vectors)
    second.add("user", "Our dog is called Pepper.")
    assert "Pepper" in second.context("What is our dog called?", 60)[0]["content"]
    second.close()
    with sqlite3.connect(path) as plain:  # any SQLite reader sees the same rows
        rows = plain.execute("SELECT session, content, length(embedding) FROM turns").fetchall()
        model = plain.execute("SELECT value FROM meta WHERE key = 'embedding_model'").fetchone()[0]
    assert len(rows) == len(CHAT) + 1 and rows[-1][:2] == ("tuesday", "Our dog is called Pepper.")
    assert {r[2] for r in rows} == {4 * first.vectors.shape[1]}  # float32 blobs, all embedded
    assert model == first.model_name


def test_sqlite_refuses_another_embedding_model(tmp_path):
    path = tmp_path / "memory.sqlite"
    with SQLiteMemory(path, embedder=WordEmbedder(), count=words) as mem:
        fill(mem, CHAT[:2])
        mem.context("flat", 50)

    with pytest.raises(ModelMismatchError, match="stand-in-words.*new file"):
        SQLiteMemory(path, embedder=WordEmbedder("other-model"), count=words)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: WindowMemory(count=words).add("user", "   "), "non-empty"),
        (lambda: WindowMemory(count=words).add("robot", "hi"), "role"),
        (lambda: WindowMemory(count=words).context("q", 0), "budget_tokens"),
        (lambda: WindowMemory(count=words).context("q", -5), "budget_tokens"),
        (lambda: WindowMemory(count=words).context(None, 10), "query"),
        (lambda: VectorMemory(k=0, embedder=WordEmbedder(), count=words), "k must"),
        (lambda: VectorMemory(embedder=WordEmbedder(), count=words).search("hi", k=-1), "k must"),
        (lambda: VectorMemory(embedder=WordEmbedder(), count=words).context(" ", 10), "empty"),
        (lambda: SummaryMemory(every=0, count=words), "every"),
        (lambda: synthetic_conversation(n_turns=10), "n_turns"),
    ],
)
def test_bad_input_says_what_to_do(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_synthetic_conversation_is_seeded_and_well_formed():
    conv = synthetic_conversation(n_turns=80, n_facts=6, seed=3)
    assert synthetic_conversation(n_turns=80, n_facts=6, seed=3) == conv
    assert synthetic_conversation(n_turns=80, n_facts=6, seed=4) != conv
    assert len(conv.turns) == 80 and [t["role"] for t in conv.turns[:2]] == ["user", "assistant"]
    for f in conv.facts:
        assert (
            conv.turns[f.turn]["content"] == f.text
            and conv.turns[f.ask_turn]["content"] == f.question
        )
        assert f.turn < 40 <= f.ask_turn
        said = [
            t["content"]
            for i, t in enumerate(conv.turns)
            if f.answer.lower() in t["content"].lower()
        ]
        assert said == [f.text]  # the answer appears once, where it was planted


def test_replay_window_forgets_what_left_it():
    convs = [synthetic_conversation(seed=s) for s in range(2)]
    rows = replay(convs, [WindowMemory(count=words) for _ in convs], [64, 4096])
    assert len(rows) == 2 * len(convs[0].facts) * 2
    assert all(r["hit"] for r in rows if r["budget"] == 4096)  # the whole history fits
    far = [r for r in rows if r["budget"] == 64 and r["distance"] > 10]  # > 10 turns = > 64 tokens
    assert far and not any(r["hit"] for r in far)
    assert all(r["tokens"] <= r["budget"] for r in rows)


@pytest.mark.slow
def test_sqlite_memory_reloads_in_a_new_process(tmp_path):
    """Nothing survives in RAM: a fresh interpreter finds the fact in the file alone. (The real
    MiniLM round trip is test_sqlite_round_trip_across_connections; a stand-in embedder here
    keeps torch out of the child process.)"""
    path = tmp_path / "memory.sqlite"
    with SQLiteMemory(path, embedder=WordEmbedder(), count=words) as mem:
        fill(mem)
        mem.context("flat", 80)  # embeds every turn into the file
    code = "\n".join(
        [
            "import numpy as np",
            "from llmlab.agents.vector_memory import SQLiteMemory",
            "from tests.doubles import WordEmbedder",
            f"m = SQLiteMemory(r'{path}', embedder=WordEmbedder(), count=lambda t: len(t.split()))",
            "assert len(m.vectors) == len(m.turns) and not m.embedder.calls  # read, not embedded",
            "print(m.context('What is my locker code at the gym?', 80)[0]['content'])",
        ]
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert "4812" in out.stdout


def test_recall_by_budget_counts_hits_per_budget():
    rows = [{"budget": 8, "hit": h, "tokens": 5} for h in (True, False, True, True)]
    out = recall_by_budget(rows)[8]
    assert out["recall"] == 0.75 and out["tokens"] == 5
    assert (out["low"], out["high"]) == wilson_ci(3, 4)


@pytest.mark.slow
def test_token_accounting_matches_the_chat_template(lm):
    from llmlab.decoding.chat_template import count_chat_tokens

    mem = fill(WindowMemory(count=token_counter(lm)))
    system = [{"role": "system", "content": "You are helpful."}]
    ctx = mem.context("anything", 10_000)
    added = count_chat_tokens(lm, system + ctx) - count_chat_tokens(lm, system)
    assert (
        added <= mem.tokens(ctx) <= added + len(ctx)
    )  # never under budget, at most 1/message over
