"""One chat interface for apps: messages in, text out -- the bundled model or any OpenAI-style server.

Phases 4-5 (RAG, the docs chat, agents) talk to a model only through this module, so switching
from the bundled SmolLM2 to a bigger local server (llama.cpp, vLLM, Ollama) or a hosted API is a
setting, not a rewrite. Every backend has the same three calls:

- ``complete(messages, max_tokens=256, temperature=0.0, stop=None, seed=None) -> ChatResult``
  (the text, why it ended, and ``usage``: prompt and completion tokens, what providers bill);
- ``stream(messages, ...)``: an iterator of text pieces as they are written. Pieces are decoded
  safely: a character split over two tokens (an emoji, an accented letter) is held back until
  it is whole, never shown as "\\ufffd";
- ``complete_batch(list_of_chats, ...)``: many chats at once (local: one batch through
  ``llmlab.generation.generate_batch``; a batch of 16 costs little more than one on a CPU).

Backends: ``LocalChat(lm)`` (the default: ``llmlab.load_lm()``) and ``OpenAIChat(base_url,
api_key, model)`` (the official ``openai`` client). ``load_chat()`` picks one from its arguments
or the environment (``LLMLAB_CHAT_BASE_URL``, ``LLMLAB_CHAT_API_KEY``, ``LLMLAB_CHAT_MODEL``).

Leaves out: tool calls, images, logprobs over HTTP and retries. Local streaming runs transformers'
own ``generate`` in a background thread (greedy output is the same as ``llmlab.generation``'s).
"""

from __future__ import annotations

import numbers
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmlab.chat_template import encode_prompt, stop_token_ids
from llmlab.generation import check_fits, generate, generate_batch
from llmlab.sampling import check_settings

if TYPE_CHECKING:
    from llmlab.models import LM

Messages = Sequence[dict]  # [{"role": "system" | "user" | "assistant", "content": "..."}]
ROLES = ("system", "user", "assistant")
ENV_BASE_URL, ENV_API_KEY, ENV_MODEL = "LLMLAB_CHAT_BASE_URL", "LLMLAB_CHAT_API_KEY", "LLMLAB_CHAT_MODEL"


@dataclass(frozen=True)
class Usage:
    """Tokens read (the whole templated chat) and written: what an API bills you for."""

    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ChatResult:
    """One answer. ``finish_reason``: "stop" (the model ended or a stop string) or "length"."""

    text: str
    usage: Usage
    finish_reason: str


# --- checks -----------------------------------------------------------------------------------


def check_messages(messages: Messages) -> list[dict]:
    """The chat as a list, or a ``ValueError`` saying what is wrong and what a chat looks like."""
    example = '[{"role": "user", "content": "Hi"}]'
    if isinstance(messages, str | dict) or not isinstance(messages, Sequence):
        raise ValueError(f"messages must be a list of messages like {example}.")
    if not messages:
        raise ValueError(f"messages is empty: give at least one message, e.g. {example}.")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValueError(f"Message {i} must be a dict with 'role' and 'content', got {m!r}.")
        if m["role"] not in ROLES:
            raise ValueError(f"Message {i} has role {m['role']!r}; use one of {', '.join(ROLES)}.")
        if not isinstance(m["content"], str):
            raise ValueError(f"Message {i}'s content must be text, got {type(m['content']).__name__}.")
    if messages[-1]["role"] == "assistant":
        raise ValueError("The last message is the assistant's: end with a user message to answer.")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def check_request(max_tokens: int, temperature: float, stop: Sequence[str] | None = None) -> list[str]:
    """The stop strings as a list, or a ValueError naming the bad ``max_tokens``/``temperature``/``stop``."""
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, numbers.Integral):
        raise ValueError(f"max_tokens must be an integer >= 1, got {max_tokens!r}.")
    try:
        check_settings(temperature=temperature, max_new_tokens=max_tokens)
    except ValueError as exc:  # name the argument as this API spells it
        raise ValueError(str(exc).replace("max_new_tokens", "max_tokens")) from None
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if not all(isinstance(s, str) and s for s in stops):
        raise ValueError(f"stop must be a string or a list of non-empty strings, got {stop!r}.")
    return stops


def _check_chats(chats: Sequence[Messages]) -> None:
    if isinstance(chats, str | dict) or not isinstance(chats, Sequence) or not chats:
        raise ValueError("chats must be a non-empty list of chats (each a list of messages).")


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` cut before the first stop string, and whether one was found.

    ``cut_at_stop("Paris.\\nQ: next", ["\\nQ:"]) -> ("Paris.", True)``.
    """
    cuts = [text.index(s) for s in stop if s in text]
    return (text[: min(cuts)], True) if cuts else (text, False)


class IncrementalDecoder:
    """Turn token ids into text pieces one token at a time, never splitting a character.

    A byte-level tokenizer may spend 2-4 tokens on one character; decoding a token alone then
    gives "\\ufffd". We decode everything so far and emit only the new, complete part.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer, self.ids, self.emitted = tokenizer, [], ""

    def push(self, token_id: int) -> str:
        """Add one token; return the text it completes ('' while a character is unfinished)."""
        self.ids.append(int(token_id))
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):  # an unfinished multi-byte character: wait for its rest
            return ""
        piece, self.emitted = text[len(self.emitted) :], text
        return piece


def stream_with_stops(pieces: Iterator[str], stop: Sequence[str]) -> Iterator[str]:
    """Pass ``pieces`` through, ending before the first stop string (even one split over pieces).

    The last ``len(longest stop) - 1`` characters are held back until it is sure they do not
    start a stop string.
    """
    hold = max((len(s) for s in stop), default=1) - 1
    text, sent = "", 0
    for piece in pieces:
        text += piece
        cut, hit = cut_at_stop(text, stop)
        if hit:
            if len(cut) > sent:
                yield cut[sent:]
            return
        ready = len(text) - hold
        if ready > sent:
            yield text[sent:ready]
            sent = ready
    if len(text) > sent:
        yield text[sent:]


# --- backends ---------------------------------------------------------------------------------


class LocalChat:
    """The bundled model (or any ``llmlab.load_lm`` model) behind the chat interface."""

    def __init__(self, lm: LM | None = None, prompt_cache: Any = None) -> None:
        if lm is None:
            from llmlab.models import load_lm

            lm = load_lm()
        self.lm, self.model = lm, lm.name
        self.prompt_cache = prompt_cache  # a llmlab.prompt_cache.PromptCache: reuse read prefixes

    def prompt_ids(self, messages: Messages) -> list[int]:
        """The token ids the model reads: the chat template applied, ready for the answer."""
        return encode_prompt(self.lm, check_messages(messages), chat=True)

    def _result(self, gen: Any, stop: list[str]) -> ChatResult:
        text, hit = cut_at_stop(gen.text, stop)  # generate already cut; cut again to be exact
        reason = "stop" if hit or gen.stop_reason in ("eos", "stop") else "length"
        return ChatResult(text, Usage(len(gen.prompt_ids), len(gen.token_ids)), reason)

    def complete(self, messages: Messages, max_tokens: int = 256, temperature: float = 0.0,
                 stop: Sequence[str] | str | None = None, seed: int | None = None) -> ChatResult:  # fmt: skip
        """The answer to the chat (``llmlab.generation.generate``; greedy at temperature 0)."""
        stops = check_request(max_tokens, temperature, stop)
        gen = generate(self.lm, check_messages(messages), max_new_tokens=max_tokens,
                       temperature=temperature, seed=seed, stop=stops, n_candidates=1,
                       prompt_cache=self.prompt_cache)  # fmt: skip
        return self._result(gen, stops)

    def complete_batch(self, chats: Sequence[Messages], max_tokens: int = 256,
                       temperature: float = 0.0, stop: Sequence[str] | str | None = None,
                       seed: int | None = None) -> list[ChatResult]:  # fmt: skip
        """Answers to many chats in one batch (left padding; greedy = one-at-a-time, token for token)."""
        stops = check_request(max_tokens, temperature, stop)
        _check_chats(chats)
        checked = [check_messages(c) for c in chats]
        gens = generate_batch(self.lm, checked, max_new_tokens=max_tokens,
                              temperature=temperature, seed=seed, stop=stops)  # fmt: skip
        return [self._result(g, stops) for g in gens]

    def stream(self, messages: Messages, max_tokens: int = 256, temperature: float = 0.0,
               stop: Sequence[str] | str | None = None, seed: int | None = None) -> Iterator[str]:  # fmt: skip
        """Text pieces as the model writes them (checks run now, generation on first ``next``)."""
        stops = check_request(max_tokens, temperature, stop)
        ids = self.prompt_ids(messages)
        check_fits(self.lm, len(ids), max_tokens)
        return stream_with_stops(self._pieces(ids, max_tokens, temperature, seed), stops)

    def _pieces(self, ids: list[int], max_tokens: int, temperature: float,
                seed: int | None) -> Iterator[str]:  # fmt: skip
        import queue

        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList
        from transformers.generation.streamers import BaseStreamer

        tokens: queue.Queue = queue.Queue()
        cancel = threading.Event()  # set when the reader stops early (stop string, break)

        class _Put(BaseStreamer):
            first = True

            def put(self, value: Any) -> None:
                if self.first:  # transformers hands over the prompt first: skip it
                    self.first = False
                    return
                for t in value.reshape(-1).tolist():
                    tokens.put(t)

            def end(self) -> None:
                tokens.put(None)

        class _Cancel(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool)

        eos = sorted(stop_token_ids(self.lm))
        sampling = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
        kwargs = dict(
            input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=max_tokens, eos_token_id=eos, pad_token_id=eos[0], streamer=_Put(),
            stopping_criteria=StoppingCriteriaList([_Cancel()]),
            **(sampling if temperature > 0 else {"do_sample": False}),
        )  # fmt: skip

        def work() -> None:
            try:
                if seed is not None:
                    torch.manual_seed(seed)
                with torch.inference_mode():
                    self.lm.model.generate(**kwargs)
            finally:
                tokens.put(None)

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        decoder, eos_set = IncrementalDecoder(self.lm.tokenizer), set(eos)
        try:
            while (t := tokens.get()) is not None:
                if t in eos_set:
                    break
                if piece := decoder.push(t):
                    yield piece
        finally:
            cancel.set()
            worker.join()


class OpenAIChat:
    """Any OpenAI-compatible chat endpoint (OpenAI, llama.cpp server, vLLM, Ollama, a proxy)."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None,
                 model: str | None = None, timeout: float = 60.0) -> None:  # fmt: skip
        from openai import OpenAI

        if not model:
            raise ValueError(f"OpenAIChat needs a model name: pass model=... or set {ENV_MODEL}.")
        # Local servers ignore the key, but the client insists on one.
        self.client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout)
        self.model = model

    def _request(self, messages: Messages, max_tokens: int, temperature: float,
                 stop: Any, seed: int | None) -> dict:  # fmt: skip
        stops = check_request(max_tokens, temperature, stop)
        req = {"model": self.model, "messages": check_messages(messages),
               "max_tokens": max_tokens, "temperature": temperature}  # fmt: skip
        return req | ({"stop": stops} if stops else {}) | ({"seed": seed} if seed is not None else {})

    def complete(self, messages: Messages, max_tokens: int = 256, temperature: float = 0.0,
                 stop: Sequence[str] | str | None = None, seed: int | None = None) -> ChatResult:  # fmt: skip
        """One request to ``/chat/completions``; usage as the server reports it."""
        resp = self.client.chat.completions.create(
            **self._request(messages, max_tokens, temperature, stop, seed)
        )
        choice, usage = resp.choices[0], resp.usage
        tokens = Usage(usage.prompt_tokens, usage.completion_tokens) if usage else Usage(0, 0)
        reason = "length" if choice.finish_reason == "length" else "stop"
        return ChatResult(choice.message.content or "", tokens, reason)

    def complete_batch(self, chats: Sequence[Messages], max_tokens: int = 256,
                       temperature: float = 0.0, stop: Sequence[str] | str | None = None,
                       seed: int | None = None) -> list[ChatResult]:  # fmt: skip
        """One request per chat, in order (the server does its own batching)."""
        _check_chats(chats)
        return [self.complete(c, max_tokens, temperature, stop, seed) for c in chats]

    def stream(self, messages: Messages, max_tokens: int = 256, temperature: float = 0.0,
               stop: Sequence[str] | str | None = None, seed: int | None = None) -> Iterator[str]:  # fmt: skip
        """Text pieces from the server's event stream (``stream=True``)."""
        req = self._request(messages, max_tokens, temperature, stop, seed)  # checks run now
        chunks = (c for c in self.client.chat.completions.create(**req, stream=True))
        return (c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content)


Chat = LocalChat | OpenAIChat


def load_chat(backend: str | None = None, *, lm: LM | None = None, base_url: str | None = None,
              api_key: str | None = None, model: str | None = None) -> Chat:  # fmt: skip
    """The chat backend: "local" (the bundled model, the default) or "openai" (a server).

    With no ``backend``, a base URL (argument or ``LLMLAB_CHAT_BASE_URL``) selects "openai".
    ``load_chat(base_url="http://127.0.0.1:8080/v1", model="qwen2.5-7b")`` talks to a local server.
    """
    base_url = base_url or os.environ.get(ENV_BASE_URL) or None
    if backend is None:
        backend = "openai" if base_url else "local"
    if backend == "local":
        return LocalChat(lm)
    if backend == "openai":
        if not base_url and not os.environ.get("OPENAI_API_KEY") and not api_key:
            raise ValueError(f"The openai backend needs base_url=... (or {ENV_BASE_URL}) "
                             f"or an API key (api_key=... or {ENV_API_KEY}).")  # fmt: skip
        return OpenAIChat(base_url, api_key or os.environ.get(ENV_API_KEY),
                          model or os.environ.get(ENV_MODEL))  # fmt: skip
    raise ValueError(f"backend must be 'local' or 'openai', got {backend!r}.")
