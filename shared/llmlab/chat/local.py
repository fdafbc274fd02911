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
  ``llmlab.decoding.batching.generate_batch``; a batch of 16 costs little more than one on a CPU).

Backends: ``LocalChat(lm)`` (here; the default: ``llmlab.load_lm()``) and ``OpenAIChat(base_url,
api_key, model)`` (``llmlab.chat.openai_backend``, the official ``openai`` client). ``load_chat()`` picks
one from its arguments or the environment (``LLMLAB_CHAT_BASE_URL``, ``LLMLAB_CHAT_API_KEY``,
``LLMLAB_CHAT_MODEL``). The result types and request checks both use are ``llmlab.chat.records``.
Every public name of those two modules is importable from here too.

Leaves out: tool calls, images, logprobs over HTTP and retries. Local streaming runs transformers'
own ``generate`` in a background thread (greedy output is the same as ``llmlab.decoding.generation``'s).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from llmlab.chat.openai_backend import ENV_API_KEY, ENV_BASE_URL, ENV_MODEL, OpenAIChat
from llmlab.chat.records import (
    ChatResult,
    Messages,
    Usage,
    check_answerable_chat,
    check_chats,
    check_request,
    cut_at_stop,
)
from llmlab.decoding.batching import generate_batch
from llmlab.decoding.chat_template import encode_prompt, stop_token_ids
from llmlab.decoding.context_window import check_fits
from llmlab.decoding.fast_generation import fast_generate

if TYPE_CHECKING:
    from llmlab.runtime.models import LM


# --- streaming text -----------------------------------------------------------------------------


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


# --- the local backend --------------------------------------------------------------------------


class LocalChat:
    """The bundled model (or any ``llmlab.load_lm`` model) behind the chat interface."""

    def __init__(self, lm: LM | None = None, prompt_cache: Any = None) -> None:
        if lm is None:
            from llmlab.runtime.models import load_lm

            lm = load_lm()
        self.lm, self.model = lm, lm.name
        self.prompt_cache = (
            prompt_cache  # a llmlab.decoding.prompt_cache.PromptCache: reuse read prefixes
        )

    def prompt_ids(self, messages: Messages) -> list[int]:
        """The token ids the model reads: the chat template applied, ready for the answer."""
        return encode_prompt(self.lm, check_answerable_chat(messages), chat=True)

    def _result(self, gen: Any, stop: list[str]) -> ChatResult:
        text, hit = cut_at_stop(gen.text, stop)  # generate already cut; cut again to be exact
        reason = "stop" if hit or gen.stop_reason in ("eos", "stop") else "length"
        return ChatResult(
            text=text,
            usage=Usage(prompt_tokens=len(gen.prompt_ids), completion_tokens=len(gen.token_ids)),
            finish_reason=reason,
        )

    def complete(
        self,
        messages: Messages,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | str | None = None,
        seed: int | None = None,
    ) -> ChatResult:
        """The answer to the chat (``llmlab.decoding.fast_generation.fast_generate``; greedy at temperature 0)."""
        stops = check_request(max_tokens, temperature, stop)
        gen = fast_generate(
            self.lm,
            check_answerable_chat(messages),
            max_new_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            stop=stops,
            n_candidates=1,
            prompt_cache=self.prompt_cache,
        )
        return self._result(gen, stops)

    def complete_batch(
        self,
        chats: Sequence[Messages],
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | str | None = None,
        seed: int | None = None,
    ) -> list[ChatResult]:
        """Answers to many chats in one batch (left padding; greedy = one-at-a-time, token for token)."""
        stops = check_request(max_tokens, temperature, stop)
        check_chats(chats)
        checked = [check_answerable_chat(c) for c in chats]
        gens = generate_batch(
            self.lm,
            checked,
            max_new_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            stop=stops,
        )
        return [self._result(g, stops) for g in gens]

    def stream(
        self,
        messages: Messages,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | str | None = None,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Text pieces as the model writes them (checks run now, generation on first ``next``)."""
        stops = check_request(max_tokens, temperature, stop)
        ids = self.prompt_ids(messages)
        check_fits(self.lm, len(ids), max_tokens)
        return stream_with_stops(self._pieces(ids, max_tokens, temperature, seed), stops)

    def _pieces(
        self, ids: list[int], max_tokens: int, temperature: float, seed: int | None
    ) -> Iterator[str]:
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
            input_ids=torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=max_tokens,
            eos_token_id=eos,
            pad_token_id=eos[0],
            streamer=_Put(),
            stopping_criteria=StoppingCriteriaList([_Cancel()]),
            **(sampling if temperature > 0 else {"do_sample": False}),
        )

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


Chat = LocalChat | OpenAIChat


def load_chat(
    backend: str | None = None,
    *,
    lm: LM | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    model: str | None = None,
) -> Chat:
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
            raise ValueError(
                f"The openai backend needs base_url=... (or {ENV_BASE_URL}) "
                f"or an API key (api_key=... or {ENV_API_KEY})."
            )
        return OpenAIChat(
            base_url, api_key or os.environ.get(ENV_API_KEY), model or os.environ.get(ENV_MODEL)
        )
    raise ValueError(f"backend must be 'local' or 'openai', got {backend!r}.")
