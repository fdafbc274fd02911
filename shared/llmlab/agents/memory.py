"""Agent memory: what to put back into the prompt once a conversation outgrows the context window.

Every memory has one interface: ``add(role, content)`` stores a turn; ``context(query,
budget_tokens) -> list[dict]`` returns messages to prepend to the next request, at most
``budget_tokens`` long (content + ``MESSAGE_OVERHEAD`` per message); ``cost`` counts what it
spent (``cost.tokens_per_turn``: prompt tokens the context adds per call plus the LM tokens spent
keeping the memory up to date, spread over the turns).

- ``WindowMemory``: the last turns that fit (short-term memory; what every chat app does first).
- ``SummaryMemory``: a running summary of older turns + the recent turns. With a chat model
  (``llmlab.chat.local``) the model rewrites the summary every ``every`` turns (``update_summaries``
  batches many memories into one ``complete_batch``); without one, an *extractive* summary: the
  user's sentences with the rarest words (TF-IDF salience), copied verbatim.
- ``VectorMemory`` (long-term: the turns most similar to the query, MiniLM), ``SQLiteMemory``
  (the same, in a file a new process reloads) and ``preload_vectors`` live in
  ``llmlab.agents.vector_memory``.
- The test bench (a long conversation with planted facts, recall per budget) is
  ``llmlab.agents.memory_eval``.

Leaves out: entity/knowledge-graph memory, forgetting and deduplication policies, memories the
agent writes itself through a tool.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# ChatML puts <|im_start|> role \n ... <|im_end|> \n around every message: 5 tokens for "user"
# and "system", 6 for "assistant" with SmolLM2's tokenizer. Counting 6 keeps us within budget.
MESSAGE_OVERHEAD = 6
ROLES = ("user", "assistant", "system")
Message = dict[str, str]


def token_counter(tokenizer: Any = None) -> Callable[[str], int]:
    """A ``text -> number of tokens`` function: an ``LM``'s tokenizer, a Hugging Face or tiktoken
    tokenizer, or (``None``) GPT-4's cl100k_base. ``token_counter()("hello world") -> 2``."""
    if tokenizer is None:
        from llmlab.runtime.models import load_tokenizer

        tokenizer = load_tokenizer()
    if hasattr(tokenizer, "model") and hasattr(tokenizer, "tokenizer"):  # an llmlab LM
        tokenizer = tokenizer.tokenizer
    if hasattr(tokenizer, "decode_single_token_bytes"):  # tiktoken
        return lambda text: len(tokenizer.encode(text, allowed_special="all"))
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def positive_int(value: Any, name: str, example: str) -> int:
    """``value`` if it is a positive int, else a ValueError naming ``name`` with an ``example``."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer (e.g. {example}), got {value!r}.")
    return value


@dataclass
class MemoryCost:
    """What a memory spent: turns stored, context calls and their tokens, LM tokens for upkeep."""

    turns: int = 0
    context_calls: int = 0
    context_tokens: int = 0  # prompt tokens all context() results added
    upkeep_tokens: int = 0  # LM prompt + completion tokens spent writing summaries

    @property
    def tokens_per_turn(self) -> float:
        """Prompt tokens per context() call + upkeep tokens per stored turn."""
        per_call = self.context_tokens / self.context_calls if self.context_calls else 0.0
        return per_call + (self.upkeep_tokens / self.turns if self.turns else 0.0)


class Memory:
    """The interface: ``add``, ``context``, ``cost``. Subclasses choose what ``context`` returns."""

    def __init__(self, count: Callable[[str], int] | None = None) -> None:
        self.turns: list[Message] = []
        self.count = count or token_counter()
        self.cost = MemoryCost()

    def add(self, role: str, content: str) -> None:
        """Remember one turn. ``add("user", "My locker code is 4812.")``."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}.")
        if not isinstance(content, str) or not content.strip():
            raise ValueError(f"content must be non-empty text, got {content!r}: skip empty turns.")
        self.turns.append({"role": role, "content": content})
        self.cost.turns += 1

    def context(self, query: str, budget_tokens: int) -> list[Message]:
        """Messages to prepend before answering ``query``, at most ``budget_tokens`` long."""
        if not isinstance(query, str):
            raise ValueError(f"query must be text (the user's next message), got {query!r}.")
        positive_int(budget_tokens, "budget_tokens", "256")
        messages = self._context(query, budget_tokens)
        self.cost.context_calls += 1
        self.cost.context_tokens += self.tokens(messages)
        return messages

    def tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens ``messages`` cost: content + ``MESSAGE_OVERHEAD`` each."""
        return sum(self.count(m["content"]) + MESSAGE_OVERHEAD for m in messages)

    def _recent(self, turns: Sequence[Message], budget: int) -> list[Message]:
        """The newest turns that fit in ``budget`` tokens, oldest first."""
        kept: list[Message] = []
        for turn in reversed(turns):
            budget -= self.count(turn["content"]) + MESSAGE_OVERHEAD
            if budget < 0:
                break
            kept.append(turn)
        return kept[::-1]

    def _clip(self, text: str, budget: int) -> str:
        """The longest word prefix of ``text`` that costs at most ``budget`` tokens."""
        words = text.split()
        lo, hi = 0, len(words)  # binary search on the number of words kept
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if self.count(" ".join(words[:mid])) <= budget else (lo, mid - 1)
        return " ".join(words[:lo])

    def _context(self, query: str, budget: int) -> list[Message]:
        raise NotImplementedError


class WindowMemory(Memory):
    """Short-term memory: the last ``max_turns`` turns (all if None) that fit in the budget."""

    def __init__(self, max_turns: int | None = None, count: Callable[[str], int] | None = None):
        super().__init__(count)
        self.max_turns = None if max_turns is None else positive_int(max_turns, "max_turns", "20")

    def _context(self, query: str, budget: int) -> list[Message]:
        turns = self.turns if self.max_turns is None else self.turns[-self.max_turns :]
        return self._recent(turns, budget)


SUMMARY_PROMPT = (
    "Copy the notes, then copy every new line that states a personal fact "
    "(a name, a code, a place, a date). Write only the lines."
)


SENTENCE_END = re.compile(r"(?<!\bMr\.)(?<!\bMrs\.)(?<!\bMs\.)(?<!\bDr\.)(?<=[.!?])\s+")


def extractive_summary(
    turns: Sequence[Message], budget_tokens: int, count: Callable[[str], int]
) -> str:
    """The user's sentences with the rarest words (mean IDF over the turns) that fit, in order.
    A sentence said more than once is boilerplate ("Times change."), so it is skipped."""
    docs = [set(re.findall(r"[a-z0-9']+", t["content"].lower())) for t in turns]
    df = Counter(w for d in docs for w in d)
    sents = [s for t in turns if t["role"] == "user" for s in SENTENCE_END.split(t["content"])]
    seen = Counter(sents)
    scored = []
    for i, s in enumerate(sents):
        words = re.findall(r"[a-z0-9']+", s.lower())
        if words and seen[s] == 1:
            scored.append((sum(math.log(len(docs) / df[w]) for w in words) / len(words), i, s))
    chosen, used = [], 0
    for _, i, s in sorted(scored, reverse=True):
        if used + count(s) + 1 <= budget_tokens:
            chosen.append((i, s))
            used += count(s) + 1
    return " ".join(s for _, s in sorted(chosen))


class SummaryMemory(Memory):
    """A summary of older turns (at most ``summary_tokens``) + the recent turns that fit.

    With ``chat`` (an ``llmlab.chat.local`` backend) the model rewrites the summary once ``every`` turns
    are waiting (at the next ``context`` call, or batched by ``update_summaries``); without,
    ``extractive_summary`` picks sentences (no LM, no upkeep tokens).
    """

    def __init__(
        self,
        chat: Any = None,
        every: int = 16,
        summary_tokens: int = 64,
        count: Callable[[str], int] | None = None,
    ) -> None:
        super().__init__(count)
        self.chat = chat
        self.every = positive_int(every, "every", "16")
        self.summary_tokens = positive_int(summary_tokens, "summary_tokens", "64")
        self.summary, self.summarized = "", 0  # the summary covers self.turns[:self.summarized]

    @property
    def due(self) -> bool:
        """True when ``every`` turns wait to be folded into the summary."""
        return len(self.turns) - self.summarized >= self.every

    def summary_request(self) -> list[Message]:
        """The chat asking the model for the new summary (the user's lines only: the facts to
        keep are the user's, and a shorter prompt is cheaper)."""
        new = [t["content"] for t in self.turns[self.summarized :] if t["role"] == "user"]
        lines = "\n".join(f"- {line}" for line in new)
        request = (
            f"Notes so far:\n{self.summary or '(none)'}\n\nNew lines:\n{lines}\n\n{SUMMARY_PROMPT}"
        )
        return [{"role": "user", "content": request}]

    def apply(self, text: str, upkeep_tokens: int = 0) -> None:
        """Install a new summary (clipped to ``summary_tokens``) covering every turn so far."""
        self.summary = self._clip(text.strip(), self.summary_tokens)
        self.summarized = len(self.turns)
        self.cost.upkeep_tokens += upkeep_tokens

    def update(self) -> None:
        """Fold the waiting turns into the summary now (one LM call, or extractive)."""
        if self.chat is None:
            self.apply(extractive_summary(self.turns, self.summary_tokens, self.count))
        else:
            (r,) = self.chat.complete_batch(
                [self.summary_request()], max_tokens=self.summary_tokens
            )
            self.apply(r.text, r.usage.total_tokens)

    def _context(self, query: str, budget: int) -> list[Message]:
        if self.due:
            self.update()
        out: list[Message] = []
        if self.summary:
            room = min(self.summary_tokens, budget - MESSAGE_OVERHEAD - 12)
            text = "Summary of the earlier conversation: " + self._clip(self.summary, room)
            if room > 0 and self.tokens([{"content": text}]) <= budget:
                out.append({"role": "system", "content": text})
        return out + self._recent(self.turns[self.summarized :], budget - self.tokens(out))


def update_summaries(memories: Sequence[SummaryMemory], max_tokens: int | None = None) -> int:
    """Update every due summary; the LM ones in ONE ``complete_batch`` per chat. Returns how many."""
    due = [m for m in memories if m.due]
    for m in (m for m in due if m.chat is None):
        m.update()
    lm_due = [m for m in due if m.chat is not None]
    for chat in {id(m.chat): m.chat for m in lm_due}.values():
        group = [m for m in lm_due if m.chat is chat]
        limit = max_tokens or max(m.summary_tokens for m in group)
        results = chat.complete_batch([m.summary_request() for m in group], max_tokens=limit)
        for m, r in zip(group, results, strict=True):
            m.apply(r.text, r.usage.total_tokens)
    return len(due)
