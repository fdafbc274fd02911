"""Tokenization: text -> token ids -> text (Phase 1).

- ``bpe``: byte-pair encoding tokenizers from scratch, checked id-for-id against tiktoken.
- ``bpe_training``: how BPE learns its merges (count pairs, merge the best, repeat).
- ``tokens``: looking at the tokens of any tokenizer, and what they cost.

Builds on ``runtime``.
"""
