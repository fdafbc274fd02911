"""One model, many requests: a worker thread that runs model jobs in order and batches the alike.

A model is one big object: two requests cannot run through it at the same moment without
slowing each other. A server therefore queues them; and since a decoding step over 8 sequences
costs little more than over one on a CPU (memory-bound), requests that wait together are worth
answering as one batch. ``ModelWorker(chat)`` does both: ``submit(fn)`` queues a job (any
function that uses the model) and returns a ``concurrent.futures.Future``; jobs submitted with
``messages`` and equal ``batch`` settings (``complete_batch`` keywords: greedy, same max_tokens
and stop) may share one ``chat.complete_batch`` call (greedy batched output = one at a time,
token for token). A job that
finds the queue empty waits ``gather_s`` (50 ms) for company, like Triton's ``max_queue_delay``.
``batch_sizes`` records how many requests each model call answered.

Leaves out: continuous batching (vLLM, llama.cpp's server add new requests to a running batch
at every step; here a request arriving mid-batch waits for the next one), priorities, timeouts.
Used by ``llmlab.serve.app``.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("llmlab.serve.app")
MAX_BATCH = 8  # requests per model call, at most
GATHER_S = 0.05  # how long a batchable job waits for company (cf. Triton's max_queue_delay)


@dataclass
class _Job:
    fn: Callable[[], Any]  # answers this job alone
    future: concurrent.futures.Future
    messages: list[dict] | None = None
    batch: dict | None = None  # complete_batch keywords; equal ones may share one call

    @property
    def key(self) -> tuple | None:
        return None if self.batch is None else tuple(sorted(self.batch.items()))


class ModelWorker:
    """All model work on one thread, in arrival order; waiting jobs with one key share a batch."""

    def __init__(self, chat: Any, max_batch: int = MAX_BATCH, gather_s: float = GATHER_S) -> None:
        self.chat, self.max_batch, self.gather_s = chat, max_batch, gather_s
        self.jobs: collections.deque[_Job | None] = collections.deque()
        self.ready = threading.Condition()
        self.batch_sizes: list[int] = []  # one entry per model call (for the curious, and tests)
        self.thread = threading.Thread(target=self._loop, name="llmlab-model", daemon=True)
        self.thread.start()

    def submit(
        self, fn: Callable[[], Any], messages: list[dict] | None = None, batch: dict | None = None
    ) -> concurrent.futures.Future:
        """Queue ``fn()``; with ``messages`` and ``batch`` it may be answered in a batch instead."""
        job = _Job(fn=fn, future=concurrent.futures.Future(), messages=messages, batch=batch)
        with self.ready:
            self.jobs.append(job)
            self.ready.notify()
        return job.future

    def close(self) -> None:
        """Finish the jobs already queued, then stop the thread."""
        with self.ready:
            self.jobs.append(None)
            self.ready.notify()
        self.thread.join(timeout=30)

    def _take(self) -> list[_Job] | None:
        with self.ready:
            while not self.jobs:
                self.ready.wait()
            first = self.jobs.popleft()
            if first is None:
                return None
            group = [first]
            if first.key is not None and self.max_batch > 1:  # wait a moment for company
                deadline = time.monotonic() + self.gather_s
                while (left := deadline - time.monotonic()) > 0 and len(self.jobs) < self.max_batch:
                    self.ready.wait(left)
                key = first.key
                for job in [j for j in self.jobs if j is not None and j.key == key]:
                    if len(group) < self.max_batch:
                        self.jobs.remove(job)
                        group.append(job)
            # a client that went away cancelled its future: skip its job
            return [j for j in group if j.future.set_running_or_notify_cancel()]

    def _loop(self) -> None:
        while (group := self._take()) is not None:
            if group:
                self.batch_sizes.append(len(group))
            if len(group) > 1:
                try:
                    results = self.chat.complete_batch(
                        [j.messages for j in group], **group[0].batch
                    )
                    for job, result in zip(group, results, strict=True):
                        job.future.set_result(result)
                    continue
                except Exception:  # e.g. one chat too long: answer each alone, errors apart
                    logger.debug("batch of %d failed; answering one by one", len(group))
            for job in group:
                try:
                    job.future.set_result(job.fn())
                except Exception as exc:  # noqa: BLE001 -- handed to the request's handler
                    job.future.set_exception(exc)
