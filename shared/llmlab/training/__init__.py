"""Training: adapt the model on a laptop CPU (Phase 6).

Builds on ``runtime``, ``decoding`` and ``chat``.
"""
