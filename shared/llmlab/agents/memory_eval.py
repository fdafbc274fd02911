"""A long synthetic conversation with facts planted at known turns, and memory recall on it.

Covers:
- ``synthetic_conversation(n_turns, n_facts, seed)``: seeded filler chat (user/assistant turns
  on a dozen topics, with distractors that share words with the questions: "the gym", "my
  sister", "the dog") and facts planted in the first half ("My locker code at the gym is 4812.")
  that the user asks about once, later ("What is my locker code at the gym?"). Each answer
  appears nowhere else, and the assistant never repeats it.
- ``recalled(messages, fact)``: the answer text is inside the context (retrieval recall: no LM).
- ``replay(conversations, memories, budgets)``: feed each conversation to its own memory, in
  lockstep (so ``llmlab.agents.memory.update_summaries`` batches the summaries of all conversations,
  and ``llmlab.agents.vector_memory.preload_vectors`` embeds every turn of every conversation in one
  batch first), and at each question record the context every budget gives. One row per
  (conversation, fact, budget).

Leaves out: real conversations (the filler is templated, so it is easier than real chat in one
way, fewer distinct words, and harder in another, the distractors) and judging answers (Phase 4's
``llmlab.evaluation.metrics`` does that).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from llmlab.agents.memory import Memory, Message, SummaryMemory, update_summaries
from llmlab.agents.vector_memory import preload_vectors
from llmlab.evaluation.metrics import wilson_ci


@dataclass(frozen=True)
class PlantedFact:
    """A fact told at ``turn`` (``text``) and asked about at ``ask_turn`` (``question``)."""

    turn: int
    text: str
    answer: str
    question: str
    ask_turn: int


@dataclass
class Conversation:
    turns: list[Message]
    facts: list[PlantedFact]


FACTS = [  # (statement, question, possible answers): answers appear nowhere else
    (
        "My locker code at the gym is {}.",
        "What is my locker code at the gym?",
        ["4812", "7395", "2068", "5531"],
    ),
    ("My sister's name is {}.", "What is my sister's name?", ["Ines", "Marta", "Yuki", "Oona"]),
    ("Our dog is called {}.", "What is our dog called?", ["Biscuit", "Pepper", "Waffles", "Ziggy"]),
    ("I grew up in {}.", "Where did I grow up?", ["Tromso", "Valparaiso", "Graz", "Nagoya"]),
    ("My employee number is {}.", "What is my employee number?", ["E-5521", "E-3907", "E-7764"]),
    ("I'm allergic to {}.", "What am I allergic to?", ["hazelnuts", "penicillin", "kiwis"]),
    (
        "The wifi password at home is {}.",
        "What is the wifi password at home?",
        ["bluefalcon77", "quietriver12", "amberowl40"],
    ),
    (
        "My dentist appointment is on {}.",
        "When is my dentist appointment?",
        ["March 14", "October 3", "June 22"],
    ),
]
TOPICS = [
    "the weather",
    "a recipe for soup",
    "the football match",
    "my new running shoes",
    "a podcast about history",
    "the train strike",
    "our garden",
    "a board game night",
    "the budget meeting",
    "a documentary about whales",
    "my bike repair",
    "learning Spanish",
]
PEOPLE = ["Tomas", "Priya", "Mr. Okafor", "Lena", "Dario", "Aunt Rosa"]
PLACES = ["Lyon", "Porto", "Leeds", "Osaka", "Bergen", "Quito"]
USER_LINES = [  # filler, with details that are not worth remembering and words the questions use
    "I was thinking about {t} again today. {p} says it is overrated, but I am not so sure.",
    "Any tips on {t}? I only have about {n} minutes a day for it.",
    "My colleague {p} keeps talking about {t}. Apparently a post about it got {n} comments.",
    "I read an article on {t} in a magazine from {c}. It was longer than I expected.",
    "The gym was packed, so I ended up thinking about {t} on the bench near the lockers.",
    "My sister and I argued about {t} at dinner. She thinks I spend too much time on it.",
    "The dog slept while I read about {t}. It was a quiet evening for once.",
    "Our neighbour {p} is back from {c} and asked me about {t}. I did not know what to say.",
    "I changed the password on my old laptop, then spent {n} minutes on {t}.",
    "My manager wants a number for {t} by Friday, maybe {n}. I will guess.",
    "I had an appointment downtown and read about {t} in the waiting room.",
    "When I was a kid in {c} nobody cared about {t}. Times change.",
]
ASSISTANT_LINES = [
    "That sounds interesting. What did you like most about {t}?",
    "Good question. With {t}, it helps to start small and keep notes of what works.",
    "I see. Many people find {t} more fun than they expected, especially after a few weeks.",
    "Thanks for sharing. Tell me more about {t} whenever you like.",
    "{p} might have a point. A lot depends on how much time you can give {t}.",
    "About {n} minutes a day is a good start for {t}. Doing it often matters more than long.",
]


def synthetic_conversation(n_turns: int = 96, n_facts: int = 6, seed: int = 0) -> Conversation:
    """Seeded filler chat (user/assistant turns) with ``n_facts`` facts planted in the first
    half and each asked about once, later, in a user turn the assistant does not answer."""
    if not (isinstance(n_facts, int) and 1 <= n_facts <= len(FACTS)):
        raise ValueError(f"n_facts must be an integer from 1 to {len(FACTS)}, got {n_facts!r}.")
    if not isinstance(n_turns, int) or n_turns < 8 * n_facts:
        raise ValueError(
            f"n_turns must be an integer >= 8 * n_facts ({8 * n_facts}), got {n_turns!r}."
        )
    rng = random.Random(seed)
    user = list(range(0, n_turns, 2))  # user turns are even, assistant turns odd
    plant = sorted(rng.sample(user[1 : len(user) // 2], n_facts))
    ask = sorted(rng.sample(user[len(user) // 2 :], n_facts))
    facts = []
    for (statement, question, answers), t, a in zip(
        rng.sample(FACTS, n_facts), plant, ask, strict=True
    ):
        value = rng.choice(answers)
        facts.append(
            PlantedFact(
                turn=t, text=statement.format(value), answer=value, question=question, ask_turn=a
            )
        )
    asks = [f.ask_turn for f in facts]
    rng.shuffle(asks)  # ask the facts in a random order
    facts = [
        PlantedFact(turn=f.turn, text=f.text, answer=f.answer, question=f.question, ask_turn=a)
        for f, a in zip(facts, asks, strict=True)
    ]
    said = {f.turn: f.text for f in facts} | {f.ask_turn: f.question for f in facts}
    turns = []
    for i in range(n_turns):
        slots = {
            "t": rng.choice(TOPICS),
            "p": rng.choice(PEOPLE),
            "c": rng.choice(PLACES),
            "n": rng.randint(10, 300),
        }
        if i in said:
            text = said[i]
        elif i % 2 == 0:
            text = rng.choice(USER_LINES).format(**slots)
        elif i - 1 in said and any(f.turn == i - 1 for f in facts):
            text = "Got it, I'll keep that in mind."
        elif i - 1 in said:
            text = "Let me check my notes on that."
        else:
            text = rng.choice(ASSISTANT_LINES).format(**slots)
        turns.append({"role": "user" if i % 2 == 0 else "assistant", "content": text})
    return Conversation(turns=turns, facts=facts)


def recalled(messages: Sequence[Message], fact: PlantedFact) -> bool:
    """Whether the fact's answer appears (case-insensitive) in the messages."""
    return fact.answer.lower() in " ".join(m["content"] for m in messages).lower()


def replay(
    conversations: Sequence[Conversation], memories: Sequence[Memory], budgets: Sequence[int]
) -> list[dict]:
    """Feed each conversation to its memory (in lockstep; due summaries batched); at each question,
    ask for the context at every budget. One row per (conversation, fact, budget).
    Vector memories get every turn's vector up front, in one batch (they still search only the
    turns added so far)."""
    if len(conversations) != len(memories):
        raise ValueError("Give one memory per conversation (a fresh one each).")
    last = max(max(f.ask_turn for f in c.facts) for c in conversations)  # the last question
    preload_vectors(memories, [t["content"] for c in conversations for t in c.turns[: last + 1]])
    rows = []
    for t in range(last + 1):
        for ci, (conv, mem) in enumerate(zip(conversations, memories, strict=True)):
            for fact in (f for f in conv.facts if f.ask_turn == t):
                for b in budgets:
                    msgs = mem.context(fact.question, b)
                    rows.append(
                        {
                            "conversation": ci,
                            "fact": fact,
                            "budget": b,
                            "messages": msgs,
                            "hit": recalled(msgs, fact),
                            "tokens": mem.tokens(msgs),
                            "distance": t - fact.turn,
                        }
                    )
            if t < len(conv.turns):
                mem.add(**conv.turns[t])
        update_summaries([m for m in memories if isinstance(m, SummaryMemory)])
    return rows


def recall_by_budget(rows: Sequence[dict]) -> dict[int, dict]:
    """Per budget: recall, its 95% Wilson interval, n, and the mean context tokens."""
    out = {}
    for b in sorted({r["budget"] for r in rows}):
        mine = [r for r in rows if r["budget"] == b]
        hits = sum(r["hit"] for r in mine)
        low, high = wilson_ci(hits, len(mine))
        out[b] = {
            "recall": hits / len(mine),
            "low": low,
            "high": high,
            "n": len(mine),
            "tokens": sum(r["tokens"] for r in mine) / len(mine),
        }
    return out
