"""How many CPU threads a forward pass gets: every core that no other program is keeping busy.

Why: torch's default is one thread per core, and a forward pass waits for its slowest thread at
every layer. When another program keeps a core busy, the thread that shares that core is slow,
and every step waits for it: one-prompt decoding fell from 19.6 to 5.8 tokens/s with one core
busy (`benchmarks/bench_threads.py`, 2 cores). Using only the free cores keeps it at the speed
of one core (13.6 tokens/s), and on an idle machine nothing changes (both cores, full speed).
The rule is the same for every forward pass: giving a one-sequence decode step a single thread
always would cost a third of the idle speed here (13.5 vs 19.6 tokens/s). The benchmark prints
the comparison on your machine.

Covers:
- ``thread_cap()``: the most threads llmlab uses: ``LLMLAB_THREADS`` or ``OMP_NUM_THREADS`` if
  set, else torch's own default (one per core).
- ``busy_cores()``: how many cores other programs kept busy in the last quarter second (Linux's
  ``/proc``; 0 elsewhere, i.e. the machine is assumed idle).
- ``threads_for(rows)``: the policy for one forward pass over ``rows`` = sequences x new
  positions: ``thread_cap()`` minus the busy cores, at least 1.
- ``use_threads(rows)``: a context manager around a forward pass that applies the policy and
  restores torch's setting afterwards. ``policy_enabled(False)`` switches the policy off
  (torch's default everywhere), for before/after comparisons.

Leaves out: ``OMP_WAIT_POLICY`` (it must be set before torch starts and costs idle speed) and
interop threads (a forward pass of a small model uses none).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

ENV_VARS = ("LLMLAB_THREADS", "OMP_NUM_THREADS")  # either caps the threads llmlab uses
LOAD_WINDOW = 0.25  # seconds: how often the busy-core estimate is refreshed

_state = {"enabled": True, "torch_default": 0}
_load = {"at": 0.0, "busy": 0.0, "own": 0.0, "others": 0.0}


def _env_cap() -> int | None:
    caps = []
    for var in ENV_VARS:
        value = os.environ.get(var, "").strip()
        if not value:
            continue
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{var} must be a whole number of threads >= 1, got {value!r}.")
        caps.append(int(value))
    return min(caps) if caps else None


def thread_cap() -> int:
    """The most threads llmlab lets torch use: the env cap, else torch's default (one per core)."""
    import torch

    if not _state["torch_default"]:  # remembered once, before llmlab changes anything
        _state["torch_default"] = torch.get_num_threads()
    cap = _env_cap()
    return cap if cap is not None else int(_state["torch_default"])


def _cpu_ticks() -> tuple[float, float]:
    """(busy ticks of the whole machine, ticks used by this process); Linux's /proc."""
    with open("/proc/stat") as f:
        cpu = [float(x) for x in f.readline().split()[1:9]]  # user nice system idle iowait irq
        # softirq steal (the guest fields that follow are already counted in user and nice)
    with open("/proc/self/stat") as f:
        own = f.read().rsplit(")", 1)[1].split()  # fields after the process name
    return sum(cpu) - cpu[3] - cpu[4], float(own[11]) + float(own[12])  # utime + stime


def busy_cores() -> float:
    """How many cores *other* programs kept busy lately (0.0 if unknown, e.g. not Linux).

    Machine-wide busy time minus this process's own, over the last ``LOAD_WINDOW`` seconds or
    more; refreshed at most that often, so calling it every step costs nothing.
    """
    now = time.monotonic()
    if now - _load["at"] < LOAD_WINDOW:
        return _load["others"]
    try:
        busy, own = _cpu_ticks()
    except (OSError, ValueError, IndexError):
        return 0.0
    if _load["at"]:
        ticks = (now - _load["at"]) * os.sysconf("SC_CLK_TCK")  # ticks per core in the window
        _load["others"] = max(0.0, (busy - _load["busy"]) - (own - _load["own"])) / ticks
    _load.update(at=now, busy=busy, own=own)
    return _load["others"]


def threads_for(rows: int) -> int:
    """Threads for a forward pass over ``rows`` = sequences x new positions: the free cores.

    On an idle 2-core machine ``threads_for(1) -> 2``; with one core busy elsewhere, 1.
    """
    if not isinstance(rows, int) or rows < 1:
        raise ValueError(f"rows (sequences x new tokens) must be an integer >= 1, got {rows!r}.")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    free = round((cores or 1) - busy_cores())  # cores nobody else is using
    return max(1, min(thread_cap(), free))


@contextmanager
def use_threads(rows: int) -> Iterator[int]:
    """Run the block with ``threads_for(rows)`` torch threads; torch's setting comes back after.

    >>> with use_threads(1):   # a single-sequence decode step: the free cores
    ...     out = model(input_ids=next_token, ...)
    """
    import torch

    before = torch.get_num_threads()
    n = threads_for(rows) if _state["enabled"] else before
    if n != before:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextmanager
def policy_enabled(enabled: bool) -> Iterator[None]:
    """Switch llmlab's thread policy on or off inside the block (off = torch's default threads)."""
    thread_cap()  # remember torch's default before anything changes it
    old = _state["enabled"]
    _state["enabled"] = bool(enabled)
    try:
        yield
    finally:
        _state["enabled"] = old
