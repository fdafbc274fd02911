"""A tiny seeded "document QA" probe: "Bob lives in Oslo." facts, one person asked about.

Used by Phase 3's why-it-matters notebook to measure two things your apps meet daily on the
bundled model: does the *order* of question and passage change the answer, and does a
*bigger haystack* around the same fact lower accuracy? ``make_items`` builds seeded items,
``ask`` scores one in one forward pass: the chat prompt, then the start of the reply
"Bob lives in", and the model's most likely next token (every city is one token).

Leaves out: free-form generation and answer parsing (one token is read, nothing else), and
any real documents (Phase 4 uses a real corpus).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

CITIES = [
    "Paris",
    "London",
    "Tokyo",
    "Berlin",
    "Madrid",
    "Rome",
    "Cairo",
    "Sydney",
    "Moscow",
    "Dublin",
    "Vienna",
    "Oslo",
    "Lisbon",
    "Athens",
    "Prague",
    "Warsaw",
    "Toronto",
    "Chicago",
    "Boston",
    "Delhi",
]
NAMES = [
    "Alice",
    "Bob",
    "Carol",
    "David",
    "Emma",
    "Frank",
    "Grace",
    "Henry",
    "Jack",
    "Maria",
    "Peter",
    "Sam",
    "Victor",
    "Rosa",
    "Noah",
    "Karen",
    "Laura",
    "Mark",
    "Nina",
    "Oscar",
    "Paul",
    "Quinn",
    "Ruth",
    "Simon",
    "Tom",
    "Uma",
    "Vera",
    "Walter",
    "Xavier",
    "Yara",
    "Zoe",
    "Adam",
    "Bella",
    "Chris",
    "Diana",
    "Ethan",
    "Fiona",
    "George",
    "Hannah",
    "Ivan",
]
ORDERS = ("after", "before", "both")  # where the question goes, relative to the passage


@dataclass(frozen=True)
class Item:
    """``names[i]`` lives in ``cities[i]``; the question is about ``names[ask]``."""

    names: tuple[str, ...]
    cities: tuple[str, ...]
    ask: int

    @property
    def answer(self) -> str:
        return self.cities[self.ask]


@dataclass(frozen=True)
class Answer:
    correct: bool  # the model's most likely next token is the right city
    p_correct: float  # the probability it gives the right city
    said: str  # the city it would say (or the token, if it is not a city)
    n_tokens: int  # prompt length


def make_items(n_items: int, n_facts: int, seed: int) -> list[Item]:
    """Seeded items: ``n_facts`` distinct people with random cities, one of them asked about."""
    if not 1 <= n_facts <= len(NAMES) or n_items < 1:
        raise ValueError(
            f"need n_items >= 1 and 1 <= n_facts <= {len(NAMES)}, got {n_items}, {n_facts}."
        )
    rng = random.Random(seed)
    items = []
    for _ in range(n_items):
        names = rng.sample(NAMES, n_facts)
        cities = [rng.choice(CITIES) for _ in names]
        items.append(Item(names=tuple(names), cities=tuple(cities), ask=rng.randrange(n_facts)))
    return items


def user_message(item: Item, order: str) -> str:
    """The passage and the question, with the question ``after``, ``before`` or ``both``."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}.")
    passage = " ".join(f"{n} lives in {c}." for n, c in zip(item.names, item.cities, strict=True))
    question = f"Which city does {item.names[item.ask]} live in?"
    return {
        "after": f"{passage}\n\n{question}",
        "before": f"{question}\n\n{passage}",
        "both": f"{question}\n\n{passage}\n\n{question}",
    }[order]


def city_ids(lm: Any) -> dict[str, int]:
    """Each city's single token id (" Paris" -> id); a ValueError if one is several tokens."""
    ids = {c: lm.tokenizer.encode(" " + c, add_special_tokens=False) for c in CITIES}
    if any(len(v) != 1 for v in ids.values()):
        raise ValueError(
            "every city must be one token for this probe; this tokenizer splits "
            f"{[c for c, v in ids.items() if len(v) != 1]}."
        )
    return {c: v[0] for c, v in ids.items()}


def ask(lm: Any, item: Item, order: str) -> Answer:
    """Score one item in one forward pass: greedy answer, p(right city), prompt length."""
    from llmlab.decoding.chat_template import chat_text, encode_prompt
    from llmlab.decoding.generation import next_token_logits

    text = chat_text(lm, [{"role": "user", "content": user_message(item, order)}])
    ids = encode_prompt(lm, text + f"{item.names[item.ask]} lives in")  # the reply is started
    probs = next_token_logits(lm, ids).softmax(-1)  # (V,)
    cities = city_ids(lm)
    best = int(probs.argmax())
    said = next((c for c, i in cities.items() if i == best), lm.tokenizer.decode([best]))
    return Answer(
        correct=said == item.answer,
        p_correct=float(probs[cities[item.answer]]),
        said=said,
        n_tokens=len(ids),
    )
