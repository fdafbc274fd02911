"""Tool use: what happens when a model "calls a tool" (Phase 5).

- ``tools``: a Python function as data (name, description, JSON schema), run safely.
- ``text_format``: how tools, calls and results are written into the chat as text, and parsed back.
- ``grammar``: a tool call as a language: the schema a constrained decoder keeps the model inside.
- ``calling``: one chat call with tools, for any backend -> text, or calls ready to run.

Builds on ``decoding`` (constrained decoding) and ``chat``.
"""
