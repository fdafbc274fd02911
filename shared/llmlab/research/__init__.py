"""Research: the research agent -- search, read, answer with checked citations.

- ``corpus``: a folder the agent may search and read (and the titles of its files), nothing else.
- ``injection``: documents that give the agent orders, and the defences.
- ``steps``: the agent's deterministic text steps (queries, notes, the answer's sentences).
- ``forms``: a question's form read by rule (a lookup, a comparison, a chain).
- ``facts``: one lookup answered by a span the model copies from the right article, with its lines.
- ``reasoning``: comparisons and chains of facts, done by code; each fact checked.
- ``run``: one run's state and result, the verify step and the score.
- ``decompose``: the facts mode over many questions, each step on the question's run.
- ``agent``: ``research(question, corpus, mode=...)``, every mode.

Builds on ``rag``, ``agents`` and ``evaluation`` (span scores).
"""
