"""Decoding: how a language model turns a prompt into text (Phase 2).

- ``chat_template``: what the model reads (messages -> one token sequence).
- ``sampling``: temperature, top-k, top-p, min-p: one distribution -> the dice.
- ``generation``: next-token probabilities and the generation loop (plain, to read).
- ``fast_generation``: the same loop plus constraints, jump-forward, prompt cache, penalties.
- ``batching``: many prompts in one batch.
- ``kv_cache``: the keys and values kept so the past is read once.
- ``prompt_cache``: reuse a prompt prefix already read (cached input).
- ``context_window``: fitting a chat in the window, what a long context costs, needle tests.
- ``counting``: a generation's counted work (forward passes, tokens read, bytes of weights).
- ``constraints``: constrained decoding (a regex by hand, llguidance grammars).
- ``explorer``: the token probability explorer's logic (its widget is in ``llmlab.views``).

Builds on ``runtime``.
"""
