"""Benchmark ``llmlab serve``: time to first token, and a bounded load test with the openai client.

    python benchmarks/bench_server.py               # 8 clients x 5 requests, batching on and off
    python benchmarks/bench_server.py --clients 4 --requests 2 --no-compare   # quicker

Goals (issue 12, on 2 CPU cores): time to first token for a short chat <= 1 s over the local
model; concurrent requests handled without crashing (8 clients x 5 requests, all answered).

- The server runs in this process (``llmlab.serve.app.start_in_thread``) on a free port, over the
  bundled model loaded before any timing starts; the clients are the official ``openai`` client
  over real HTTP, one thread each. One warm-up request first (one-off costs).
- Time to first token: a short chat, streamed; from sending the request to the first text piece;
  median of 5.
- Load test: each client sends its requests one after another (different short questions,
  greedy, ``--max-tokens`` each); errors are counted, not raised. Latency per request (p50, p95),
  requests/s and generated tokens/s over the wall time, and how many requests each model call
  answered (the server batches greedy requests that wait together). ``--no-compare`` skips the
  same load with batching off (one request per model call), which shows what batching buys.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

TOPICS = [
    "the Moon",
    "Paris",
    "water",
    "a violin",
    "the Nile",
    "Python",
    "bees",
    "winter",
    "chess",
    "volcanoes",
]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) by nearest rank on sorted values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def time_to_first_token(client, model: str, runs: int = 5) -> tuple[list[float], list[float]]:
    ttft, total = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        first = None
        stream = client.chat.completions.create(
            model=model,
            max_tokens=32,
            stream=True,
            messages=[{"role": "user", "content": "Hi! What can you help me with?"}],
        )
        for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter() - t0
        ttft.append(first if first is not None else float("nan"))
        total.append(time.perf_counter() - t0)
    return ttft, total


def load_test(client, model: str, clients: int, requests: int, max_tokens: int) -> dict:
    latencies: list[float] = []
    tokens, errors = [0], []
    lock = threading.Lock()

    def one_client(c: int) -> None:
        for r in range(requests):
            topic = TOPICS[(c * requests + r) % len(TOPICS)]
            t0 = time.perf_counter()
            try:
                resp = client.chat.completions.create(
                    model=model,
                    max_tokens=max_tokens,
                    messages=[{"role": "user", "content": f"Tell me one fact about {topic}."}],
                )
                with lock:
                    latencies.append(time.perf_counter() - t0)
                    tokens[0] += resp.usage.completion_tokens
            except Exception as exc:  # noqa: BLE001 -- counted, the load goes on
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=one_client, args=(c,)) for c in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"wall": wall, "latencies": latencies, "tokens": tokens[0], "errors": errors}


def report(name: str, res: dict, sent: int, batches: list[int]) -> None:
    lat = res["latencies"]
    print(
        f"{name}: {len(lat)}/{sent} answered, {len(res['errors'])} errors; latency p50 "
        f"{percentile(lat, 0.5):.2f} s, p95 {percentile(lat, 0.95):.2f} s; "
        f"{len(lat) / res['wall']:.2f} requests/s, {res['tokens'] / res['wall']:.1f} generated "
        f"tokens/s over {res['wall']:.1f} s; {len(batches)} model calls, requests per call: "
        f"max {max(batches, default=0)}, mean {statistics.mean(batches or [0]):.1f}"
    )
    for err in res["errors"][:3]:
        print(f"  error: {err[:160]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=5, help="requests per client")
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--no-compare", action="store_true", help="skip the batching-off run")
    args = parser.parse_args()
    from openai import OpenAI

    from llmlab.chat.local import LocalChat
    from llmlab.serve.app import start_in_thread

    chat = LocalChat()
    print(
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"load {os.getloadavg()[0]:.1f} at start"
    )
    with start_in_thread(chat) as srv:
        client = OpenAI(base_url=srv.base_url, api_key="not-needed", max_retries=0, timeout=600)
        worker = srv.app.state.worker
        client.chat.completions.create(
            model=chat.model, max_tokens=4, messages=[{"role": "user", "content": "Hi"}]
        )  # warm-up
        ttft, total = time_to_first_token(client, chat.model)
        print(
            f"time to first token (short chat, streamed, over HTTP): median "
            f"{statistics.median(ttft):.3f} s of {[round(t, 3) for t in ttft]} (goal <= 1 s); "
            f"whole 32-token answer median {statistics.median(total):.2f} s"
        )
        sent = args.clients * args.requests
        for batching in [True] if args.no_compare else [True, False]:
            worker.max_batch = 8 if batching else 1
            before = len(worker.batch_sizes)
            res = load_test(client, chat.model, args.clients, args.requests, args.max_tokens)
            name = (
                f"load {args.clients} clients x {args.requests} requests, {args.max_tokens} "
                f"tokens each, batching {'on' if batching else 'off'}"
            )
            report(name, res, sent, worker.batch_sizes[before:])
    print(f"load {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
