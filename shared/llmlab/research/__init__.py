"""Research: the research agent -- search, read, take notes, answer with checked citations.

- ``corpus``: a folder the agent may search and read, and nothing outside it.
- ``injection``: documents that give the agent orders, and the defences.
- ``steps``: the agent's deterministic text steps (queries, notes, the answer's sentences).
- ``run``: one run's state and result, the verify step and the score.
- ``agent``: ``research(question, corpus, mode=...)``.

Builds on ``rag`` and ``agents``.
"""
