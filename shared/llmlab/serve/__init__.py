"""Serve: ``llmlab serve``, an OpenAI-compatible HTTP endpoint over the local model.

- ``protocol``: the chat-completions wire format (request checks, response shapes).
- ``worker``: one model thread that batches waiting requests.
- ``app``: the FastAPI app and its routes.

Builds on ``chat`` and ``tool_use``.
"""
