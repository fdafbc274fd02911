"""Agents: a loop around one chat call, its patterns, and its memory (Phase 5).

- ``loop``: observe -> decide -> act, within budgets; ``RunRecord``, the accounts of any run.
- ``grounding``: keep a small model copying: arguments from the task, answers among results.
- ``patterns``: no tools, ReAct, plan-and-execute, reflection -- measured on the same tasks.
- ``tasks``: a fixed task set where tools help a small model, and its scorer.
- ``memory``: window and summary memories; ``vector_memory``: embedded turns, in SQLite.
- ``memory_eval``: a long conversation with planted facts, and recall on it.

Builds on ``tool_use``.
"""
