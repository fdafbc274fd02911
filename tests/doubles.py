"""The test doubles every test module shares: stand-ins that make a test fast and exact.

- ``FakeOpenAIServer``: an OpenAI-compatible ``POST /v1/chat/completions`` on 127.0.0.1 that
  answers with the message a test gives it (plain or streamed) and records every request.
- ``WordEmbedder``: a stand-in sentence embedder where texts that share words are close: each
  word is a fixed random vector, a text is the sum of its words' vectors. No model load.
- ``HashEmbedder``: a stand-in embedder with one fixed unit vector per distinct text (no
  similarity at all): for tests about caching, counting and bookkeeping.
- ``add``: a typed tool with a docstring, as ``llmlab.tool_use.tools.tool`` reads it.
- ``tiny_llama(tokenizer, blocks)``: a random Llama of a few 64-wide blocks with the real
  SmolLM2 tokenizer and chat template: the same code paths as the bundled model in milliseconds
  (for training and scoring tests whose result does not depend on what the model knows).

Both embedders record what they were asked (``.calls``: one list of texts per ``encode`` call)
and carry an ``llmlab_name``, the name an index is stamped with.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


# --- an OpenAI-compatible server -------------------------------------------------------------


def echo(body: dict) -> dict:
    """The default reply: "Echo: " and the last message's text."""
    return {"role": "assistant", "content": "Echo: " + body["messages"][-1]["content"]}


class FakeOpenAIServer:
    """``with FakeOpenAIServer(reply) as fake:`` serves ``fake.url`` (ends in ``/v1``).

    ``reply(body) -> message`` builds the assistant message for each request; ``usage`` is the
    token count every answer reports; ``fake.requests`` holds each request's body with its
    ``path`` and ``auth`` header. A streamed request gets the content in three chunks.
    """

    def __init__(self, reply: Callable[[dict], dict] = echo, usage: tuple[int, int] = (7, 3)):
        self.reply, self.usage, self.requests = reply, usage, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), **body}
                )
                message = server.reply(body)
                if body.get("stream"):
                    server.stream(self, body, message.get("content") or "")
                else:
                    server.answer(self, body, message)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def answer(self, handler: BaseHTTPRequestHandler, body: dict, message: dict) -> None:
        prompt, completion = self.usage
        payload = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
                    "message": message,
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
        data = json.dumps(payload).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def stream(self, handler: BaseHTTPRequestHandler, body: dict, text: str) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        for piece in [text[:3], text[3:8], text[8:]]:
            chunk = {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
            handler.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        handler.wfile.write(b"data: [DONE]\n\n")

    def __enter__(self) -> FakeOpenAIServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- stand-in embedders ----------------------------------------------------------------------


class WordEmbedder:
    """Texts that share words get similar vectors: each lowercase word is a fixed random
    ``(dim,)`` vector (seeded by the word), a text is their sum (not normalised)."""

    def __init__(self, name: str = "stand-in-words", dim: int = 16) -> None:
        self.llmlab_name, self.dim, self.calls = name, dim, []

    def encode(self, texts, **kwargs) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)  # (n, dim)
        for i, text in enumerate(texts):
            for w in text.lower().split():
                seed = int.from_bytes(w.encode()[:8].ljust(8, b"\0"), "little") % 2**32
                out[i] += np.random.default_rng(seed).standard_normal(self.dim)
        return out

    @property
    def seen(self) -> list[str]:
        """Every text embedded so far, in order."""
        return [t for call in self.calls for t in call]


class HashEmbedder(WordEmbedder):
    """One fixed unit vector per distinct text (from its SHA-256): equal texts, equal vectors;
    nothing else is similar. For tests that count and cache, not rank."""

    def __init__(self, name: str = "stand-in-hash", dim: int = 16) -> None:
        super().__init__(name, dim)

    def encode(self, texts, **kwargs) -> np.ndarray:
        self.calls.append(list(texts))
        rows = [
            np.frombuffer(hashlib.sha256(t.encode()).digest(), np.uint8)[: self.dim] for t in texts
        ]
        v = np.array(rows, np.float32).reshape(len(texts), self.dim) + 1.0  # (n, dim)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


# --- a tiny language model ---------------------------------------------------------------


def tiny_llama(tokenizer, blocks: int = 2, seed: int = 0, positions: int = 256):
    """A ``blocks``-block random Llama (hidden 64, 4 heads, 2 KV heads, tied embeddings, a
    ``positions``-token window) sized for ``tokenizer``. Its embeddings are scaled up (random
    ones have std 0.02), so logits move."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=blocks,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=positions,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(10)
    return model
