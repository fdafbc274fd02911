"""The chat interface over HTTP: any OpenAI-compatible ``/chat/completions`` endpoint.

``OpenAIChat(base_url, api_key, model)`` has the same three calls as ``llmlab.chat.local.LocalChat``
(``complete``, ``stream``, ``complete_batch``) through the official ``openai`` client, so an app
moves from the bundled model to llama.cpp's server, vLLM, Ollama or a hosted API by changing one
line (``llmlab.chat.local.load_chat(base_url=...)``). Requests are checked locally first
(``llmlab.chat.records``), so a bad ``max_tokens`` fails the same way on every backend.

Leaves out: retries and rate limits, tool calls (``llmlab.tool_use.calling``), logprobs, images.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from llmlab.chat.records import (
    ChatResult,
    Messages,
    Usage,
    check_answerable_chat,
    check_chats,
    check_request,
)

ENV_BASE_URL, ENV_API_KEY, ENV_MODEL = (
    "LLMLAB_CHAT_BASE_URL",
    "LLMLAB_CHAT_API_KEY",
    "LLMLAB_CHAT_MODEL",
)


class OpenAIChat:
    """Any OpenAI-compatible chat endpoint (OpenAI, llama.cpp server, vLLM, Ollama, a proxy)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        from openai import OpenAI

        if not model:
            raise ValueError(f"OpenAIChat needs a model name: pass model=... or set {ENV_MODEL}.")
        # Local servers ignore the key, but the client insists on one.
        self.client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout)
        self.model = model

    def _request(
        self, messages: Messages, max_tokens: int, temperature: float, stop: Any, seed: int | None
    ) -> dict:
        stops = check_request(max_tokens, temperature, stop)
        req = {
            "model": self.model,
            "messages": check_answerable_chat(messages),
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        return (
            req | ({"stop": stops} if stops else {}) | ({"seed": seed} if seed is not None else {})
        )

    def complete(
        self,
        messages: Messages,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | str | None = None,
        seed: int | None = None,
    ) -> ChatResult:
        """One request to ``/chat/completions``; usage as the server reports it."""
        resp = self.client.chat.completions.create(
            **self._request(messages, max_tokens, temperature, stop, seed)
        )
        choice, usage = resp.choices[0], resp.usage
        tokens = (
            Usage(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)
            if usage
            else Usage(prompt_tokens=0, completion_tokens=0)
        )
        reason = "length" if choice.finish_reason == "length" else "stop"
        return ChatResult(text=choice.message.content or "", usage=tokens, finish_reason=reason)

    def complete_batch(
        self,
        chats: Sequence[Messages],
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | str | None = None,
        seed: int | None = None,
    ) -> list[ChatResult]:
        """One request per chat, in order (the server does its own batching)."""
        check_chats(chats)
        return [self.complete(c, max_tokens, temperature, stop, seed) for c in chats]

    def stream(
        self,
        messages: Messages,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | str | None = None,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Text pieces from the server's event stream (``stream=True``)."""
        req = self._request(messages, max_tokens, temperature, stop, seed)  # checks run now
        chunks = (c for c in self.client.chat.completions.create(**req, stream=True))
        return (
            c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
        )
