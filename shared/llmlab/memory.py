"""Agent memory: what to put back into the prompt once a conversation outgrows the context window.

Every memory has one interface: ``add(role, content)`` stores a turn; ``context(query,
budget_tokens) -> list[dict]`` returns messages to prepend to the next request, at most
``budget_tokens`` long (content + ``MESSAGE_OVERHEAD`` per message); ``cost`` counts what it
spent (``cost.tokens_per_turn``: prompt tokens the context adds per call plus the LM tokens spent
keeping the memory up to date, spread over the turns).

- ``WindowMemory``: the last turns that fit (short-term memory; what every chat app does first).
- ``SummaryMemory``: a running summary of older turns + the recent turns. With a chat model
  (``llmlab.chat``) the model rewrites the summary every ``every`` turns (``update_summaries``
  batches many memories into one ``complete_batch``); without one, an *extractive* summary: the
  user's sentences with the rarest words (TF-IDF salience), copied verbatim.
- ``VectorMemory``: long-term memory: every turn embedded (``llmlab.embedding_cache.embed_cached``,
  MiniLM), the top-k turns by cosine similarity to the query.
- ``SQLiteMemory``: ``VectorMemory`` persisted in a stdlib ``sqlite3`` file (``SCHEMA``; vectors
  as float32 blobs) that a new process reloads and any SQLite viewer opens.
- The test bench (a long conversation with planted facts, recall per budget) is
  ``llmlab.memory_eval``.

Leaves out: entity/knowledge-graph memory, forgetting and deduplication policies, memories the
agent writes itself through a tool, and approximate vector indexes (exact cosine is fast here).
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llmlab.search import ModelMismatchError

# ChatML puts <|im_start|> role \n ... <|im_end|> \n around every message: 5 tokens for "user"
# and "system", 6 for "assistant" with SmolLM2's tokenizer. Counting 6 keeps us within budget.
MESSAGE_OVERHEAD = 6
ROLES = ("user", "assistant", "system")
Message = dict[str, str]


def token_counter(tokenizer: Any = None) -> Callable[[str], int]:
    """A ``text -> number of tokens`` function: an ``LM``'s tokenizer, a Hugging Face or tiktoken
    tokenizer, or (``None``) GPT-4's cl100k_base. ``token_counter()("hello world") -> 2``."""
    if tokenizer is None:
        from llmlab.models import load_tokenizer

        tokenizer = load_tokenizer()
    if hasattr(tokenizer, "model") and hasattr(tokenizer, "tokenizer"):  # an llmlab LM
        tokenizer = tokenizer.tokenizer
    if hasattr(tokenizer, "decode_single_token_bytes"):  # tiktoken
        return lambda text: len(tokenizer.encode(text, allowed_special="all"))
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _positive_int(value: Any, name: str, example: str) -> int:
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
        _positive_int(budget_tokens, "budget_tokens", "256")
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
        self.max_turns = None if max_turns is None else _positive_int(max_turns, "max_turns", "20")

    def _context(self, query: str, budget: int) -> list[Message]:
        turns = self.turns if self.max_turns is None else self.turns[-self.max_turns :]
        return self._recent(turns, budget)


SUMMARY_PROMPT = ("Copy the notes, then copy every new line that states a personal fact "
                  "(a name, a code, a place, a date). Write only the lines.")


SENTENCE_END = re.compile(r"(?<!\bMr\.)(?<!\bMrs\.)(?<!\bMs\.)(?<!\bDr\.)(?<=[.!?])\s+")


def extractive_summary(turns: Sequence[Message], budget_tokens: int,
                       count: Callable[[str], int]) -> str:  # fmt: skip
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

    With ``chat`` (an ``llmlab.chat`` backend) the model rewrites the summary once ``every`` turns
    are waiting (at the next ``context`` call, or batched by ``update_summaries``); without,
    ``extractive_summary`` picks sentences (no LM, no upkeep tokens).
    """

    def __init__(self, chat: Any = None, every: int = 16, summary_tokens: int = 64,
                 count: Callable[[str], int] | None = None) -> None:  # fmt: skip
        super().__init__(count)
        self.chat = chat
        self.every = _positive_int(every, "every", "16")
        self.summary_tokens = _positive_int(summary_tokens, "summary_tokens", "64")
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
        request = f"Notes so far:\n{self.summary or '(none)'}\n\nNew lines:\n{lines}\n\n{SUMMARY_PROMPT}"
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
            (r,) = self.chat.complete_batch([self.summary_request()], max_tokens=self.summary_tokens)
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


class VectorMemory(Memory):
    """Long-term memory: the ``k`` past turns most similar to the query (cosine, MiniLM).
    ``cache=True`` keeps the turns' vectors in ``embed_cached``'s on-disk cache (one file per batch)."""

    def __init__(self, k: int = 8, embedder: Any = None, count: Callable[[str], int] | None = None,
                 cache: bool = True) -> None:  # fmt: skip
        from llmlab.embeddings import default_embedder
        from llmlab.models import embedder_name

        super().__init__(count)
        self.k = _positive_int(k, "k", "8")
        self.embedder = default_embedder() if embedder is None else embedder
        self.model_name = embedder_name(self.embedder)
        self.vectors = np.zeros((0, 0), dtype=np.float32)  # (turns embedded, dim)
        self._query: tuple[str, np.ndarray] | None = None  # the last query and its vector
        self.cache = cache

    def _embed_new(self) -> np.ndarray:
        """Embed the turns not embedded yet, in one batch; returns their ``(n, dim)`` vectors."""
        from llmlab.embedding_cache import embed_cached
        from llmlab.embeddings import embed

        new = [t["content"] for t in self.turns[len(self.vectors) :]]
        if not new:
            return np.zeros((0, self.vectors.shape[1]), dtype=np.float32)
        fresh = (embed_cached if self.cache else embed)(new, model=self.embedder)  # (n_new, dim)
        self.vectors = fresh if not len(self.vectors) else np.vstack([self.vectors, fresh])
        return fresh

    def search(self, query: str, k: int | None = None) -> list[tuple[int, float]]:
        """(turn index, cosine) of the ``k`` turns most similar to ``query``, best first."""
        from llmlab.embeddings import embed

        k = self.k if k is None else _positive_int(k, "k", "8")
        if not query.strip():
            raise ValueError("query is empty: pass the user's next message to search memory with.")
        self._embed_new()
        if not len(self.vectors):
            return []
        if self._query is None or self._query[0] != query:
            self._query = (query, embed([query], model=self.embedder)[0])  # (dim,)
        scores = self.vectors @ self._query[1]  # (turns,)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(i), float(scores[i])) for i in order]

    def _context(self, query: str, budget: int) -> list[Message]:
        header = "Earlier in this conversation:"
        lines, used = {}, self.count(header) + MESSAGE_OVERHEAD
        for i, _ in self.search(query):
            line = f"{self.turns[i]['role']}: {self.turns[i]['content']}"
            if used + self.count(line) + 1 <= budget:
                lines[i], used = line, used + self.count(line) + 1
        if not lines:
            return []
        return [{"role": "system", "content": "\n".join([header] + [lines[i] for i in sorted(lines)])}]


SCHEMA = """CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session TEXT NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (datetime('now')),
    embedding BLOB  -- float32 little-endian, one value per dimension; NULL until embedded
);"""


class SQLiteMemory(VectorMemory):
    """A ``VectorMemory`` kept in a SQLite file: every session's turns, reloaded on open.
    The vectors live in the file, so the on-disk embedding cache is not used."""

    def __init__(self, path: str | Path, session: str = "default", k: int = 8,
                 embedder: Any = None, count: Callable[[str], int] | None = None) -> None:  # fmt: skip
        super().__init__(k, embedder, count, cache=False)
        if not isinstance(session, str) or not session.strip():
            raise ValueError(f"session must be a non-empty name, got {session!r}.")
        self.path, self.session = Path(path), session
        self.db = sqlite3.connect(self.path)
        self.db.executescript(SCHEMA)
        stored = dict(self.db.execute("SELECT key, value FROM meta"))
        if stored.get("embedding_model", self.model_name) != self.model_name:
            self.db.close()
            raise ModelMismatchError(
                f"{self.path} was written with embeddings from {stored['embedding_model']!r}, but "
                f"this memory embeds with {self.model_name!r}: their vectors are not comparable. "
                f"Open it with embedder=llmlab.load_embedder({stored['embedding_model']!r}), or "
                "use a new file.")  # fmt: skip
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('embedding_model', ?)", (self.model_name,))
        rows = self.db.execute("SELECT id, role, content, embedding FROM turns ORDER BY id").fetchall()
        self.ids = [r[0] for r in rows]
        self.turns = [{"role": r[1], "content": r[2]} for r in rows]
        blobs = [r[3] for r in rows]
        done = len(blobs) if None not in blobs else blobs.index(None)  # embedded prefix
        if done:
            self.vectors = np.stack([np.frombuffer(b, dtype="<f4") for b in blobs[:done]])
        self._embed_new()

    def add(self, role: str, content: str) -> None:
        """Remember one turn and write it to the file at once (embedded at the next search)."""
        super().add(role, content)
        with self.db:
            cur = self.db.execute("INSERT INTO turns (session, role, content) VALUES (?, ?, ?)",
                                  (self.session, role, content))  # fmt: skip
        self.ids.append(cur.lastrowid)

    def _embed_new(self) -> np.ndarray:
        start = len(self.vectors)
        fresh = super()._embed_new()  # (n_new, dim)
        with self.db:
            self.db.executemany("UPDATE turns SET embedding = ? WHERE id = ?",
                                [(v.astype("<f4").tobytes(), i)
                                 for v, i in zip(fresh, self.ids[start:], strict=True)])  # fmt: skip
        return fresh

    def close(self) -> None:
        """Close the file (every turn is already saved)."""
        self.db.close()

    def __enter__(self) -> SQLiteMemory:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
