"""RAG: answers from retrieved passages, with citations that are checked (Phase 4).

- ``answering``: the prompt with numbered passages, and the answer generated from it.
- ``docchat``: chat with your docs: rewrite -> retrieve -> prompt -> generate -> cite -> check.
- ``citations``: does each sentence say what the sources it cites say (ALCE, CPU proxy)?

Builds on ``search``, ``decoding``, ``evaluation`` and ``chat``.
"""
