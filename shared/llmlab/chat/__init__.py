"""Chat: one interface for apps -- messages in, text out -- whichever model answers.

- ``records``: what every backend shares: results, usage, request checks, stop strings.
- ``local``: ``LocalChat``, the bundled model (or any local transformers model), and ``load_chat``.
- ``openai_backend``: ``OpenAIChat``, any OpenAI-compatible server (llama.cpp, vLLM, a provider).
- ``prompting``: prompt variants scored on a labelled set (Phase 4 prompt engineering).

Builds on ``decoding`` and ``evaluation``.
"""
