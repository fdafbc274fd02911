"""Internals: the transformer opened up, from SmolLM2's own weights (Phase 3).

- ``attention``: the attention formula by hand, and the model's real attention weights.
- ``transformer``: one decoder block rebuilt nanoGPT-style, checked against the model.
- ``heads``: what attention heads do (scores, switching them off).
- ``fact_qa``: a seeded document-QA probe for order and haystack effects.

Builds on ``runtime`` and ``decoding``.
"""
