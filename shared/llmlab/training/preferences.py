"""Preference pairs: a prompt, the answer people preferred, and the one they did not.

Alignment methods (a reward model, best-of-n, DPO) learn from comparisons, not from right
answers: "for this prompt, answer A is better than answer B". Two sets of such pairs ship here:

- ``polite_pairs()``: rasbt's 1,100 instructions (LLMs-from-scratch, Apache-2.0), each with a
  polite ``chosen`` and an impolite ``rejected`` answer: a preference about *style*. The prompt
  is a user message, read through the chat template.
- ``fact_swap_pairs(n, seed)``: faithful vs fact-swapped sentences from the Wikipedia leads
  (CC BY-SA 4.0): ``"Tyto is" -> " a genus of owls in the family Tytonidae."`` preferred over
  the predicate of another lead of the same topic (``" an inland province in Central China."``).
  Same style, different truth: a preference about *facts*. The prompt is plain text to continue.
- ``split_pairs``: a fixed random train / held-out split.

Leaves out: pairs with ties or graded scores, multi-turn prompts, and preference data
collected from this model's own samples (the "on-policy" data real pipelines gather).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from llmlab.data.datasets import WikiArticle, load_preferences, load_wiki_summaries


@dataclass(frozen=True)
class PreferencePair:
    """``chosen`` is preferred over ``rejected`` as the answer to ``prompt``.

    ``chat=True``: ``prompt`` is a user message and the answers are assistant turns (chat
    template); ``chat=False``: the answers continue the text ``prompt`` directly.
    """

    prompt: str
    chosen: str
    rejected: str
    chat: bool = True

    def text(self, answer: str) -> str:
        """What a reward model reads for one answer: the prompt, then the answer."""
        return f"{self.prompt}\n{answer}" if self.chat else self.prompt + answer


def polite_pairs() -> list[PreferencePair]:
    """rasbt's polite (chosen) vs impolite (rejected) answers, in file order; the 6 records
    whose two answers are identical are left out (they carry no preference)."""
    return [
        PreferencePair(
            prompt=p.instruction + (f"\n\n{p.input}" if p.input else ""),
            chosen=p.chosen,
            rejected=p.rejected,
            chat=True,
        )
        for p in load_preferences()
        if p.chosen != p.rejected
    ]


_FIRST_SENTENCE = re.compile(r"(?<=[a-z0-9)])\.\s")  # a period after a word, then a space
_VERBS = ("is", "was", "are", "were")


def lead_predicate(article: WikiArticle, max_words: int = 25) -> tuple[str, str] | None:
    """The first sentence of a lead split as (verb, predicate) when it reads "<title> <verb>
    <predicate>." with at most ``max_words`` words, else None.

    ``"Tyto is a genus of owls in the family Tytonidae. ..." -> ("is", "a genus of owls in the
    family Tytonidae.")``
    """
    first = _FIRST_SENTENCE.split(article.extract.strip(), maxsplit=1)[0].rstrip(".") + "."
    head = article.title + " "
    if not first.startswith(head):
        return None
    verb, _, predicate = first[len(head) :].partition(" ")
    if verb not in _VERBS or not 3 <= len(predicate.split()) <= max_words:
        return None
    return verb, predicate


def fact_swap_pairs(n: int, seed: int = 0) -> list[PreferencePair]:
    """``n`` faithful vs fact-swapped sentences: the prompt is ``"<title> <verb>"``, chosen is
    its own lead's predicate, rejected is the predicate of a random other lead of the same topic
    (same style of sentence, wrong fact). Fixed by ``seed``."""
    usable = [(a, p) for a in load_wiki_summaries() if (p := lead_predicate(a))]
    if not 0 < n <= len(usable):
        raise ValueError(f"n must be between 1 and {len(usable)} (usable leads), got {n}.")
    rng = random.Random(seed)
    by_topic: dict[str, list[str]] = defaultdict(list)
    for article, (_, predicate) in usable:
        by_topic[article.topic].append(predicate)
    pairs = []
    for article, (verb, predicate) in rng.sample(usable, n):
        others = [p for p in by_topic[article.topic] if p != predicate]
        pairs.append(
            PreferencePair(
                prompt=f"{article.title} {verb}",
                chosen=" " + predicate,
                rejected=" " + rng.choice(others),
                chat=False,
            )
        )
    return pairs


def split_pairs(
    pairs: Sequence[PreferencePair], n_heldout: int, seed: int = 0
) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """(train, held-out): ``n_heldout`` pairs drawn at random (``seed``), never seen in training."""
    if not 0 < n_heldout < len(pairs):
        raise ValueError(f"n_heldout must be between 1 and {len(pairs) - 1}, got {n_heldout}.")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    held = set(order[:n_heldout])
    return (
        [p for i, p in enumerate(pairs) if i not in held],
        [p for i, p in enumerate(pairs) if i in held],
    )
