"""Tests for llmlab.runtime.threads: the thread policy and its environment caps."""

from __future__ import annotations

import pytest
import torch

from llmlab.runtime import threads


@pytest.fixture
def no_env_cap(monkeypatch):
    for var in threads.ENV_VARS:
        monkeypatch.delenv(var, raising=False)


def test_every_forward_pass_gets_the_free_cores(no_env_cap, monkeypatch):
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.0)  # an idle machine
    for rows in (1, 8):
        assert threads.threads_for(rows) == threads.thread_cap() >= 1
    monkeypatch.setattr(threads, "busy_cores", lambda: 64.0)  # every core busy elsewhere
    for rows in (1, 8):
        assert threads.threads_for(rows) == 1


def test_one_busy_core_leaves_the_others(no_env_cap, monkeypatch):
    import os

    cores = len(os.sched_getaffinity(0))
    monkeypatch.setattr(threads, "busy_cores", lambda: 1.0)
    assert threads.threads_for(1) == max(1, min(threads.thread_cap(), cores - 1))


def test_busy_cores_is_a_plausible_reading():
    import os
    import time

    threads.busy_cores()
    time.sleep(threads.LOAD_WINDOW * 1.2)
    assert 0.0 <= threads.busy_cores() <= (os.cpu_count() or 1) + 0.5


@pytest.mark.parametrize("var", threads.ENV_VARS)
def test_env_caps_the_threads(monkeypatch, no_env_cap, var):
    monkeypatch.setenv(var, "1")
    assert threads.threads_for(64) == 1
    monkeypatch.setenv(var, "many")
    with pytest.raises(ValueError, match=f"{var} must be a whole number"):
        threads.thread_cap()


def test_use_threads_sets_and_restores_torch(no_env_cap, monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "busy_cores", lambda: 64.0)  # every core busy elsewhere
    with threads.use_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with threads.policy_enabled(False), threads.use_threads(1) as n:
        assert n == before == torch.get_num_threads()  # off: torch's own setting stays
    with pytest.raises(ValueError, match="rows"):
        threads.threads_for(0)
