"""Benchmark semantic search: embedding throughput, query latency at 10k/100k vectors, memory.

    python benchmarks/bench_search.py            # uses all CPU threads torch sees
    OMP_NUM_THREADS=1 python benchmarks/bench_search.py

Goal: under 20 ms per query at 100k stored vectors on 2 CPU cores.

- Throughput: the bundled all-MiniLM-L6-v2 embeds the first 1,000 STS-B test sentences
  (real short sentences) with ``llmlab.search.embeddings.embed``, at batch sizes 32 and 64.
- Latency: median, 95th percentile and best (fastest) wall time of 200 searches, plus the CPU
  time the process used (on a busy machine, wall time includes waiting for a core; the best
  time and the CPU time are closer to what a free machine gives).
  The stored vectors are *random unit vectors* of dimension 384: embedding 100k real texts at
  the throughput measured here (~65 texts/s on one core) would take about 25 minutes, and search
  cost depends only on the count and the dimension, not on what the vectors mean. We time ``SemanticIndex.search_vector`` (matrix-vector
  product + top-k) for real query embeddings, and ``search`` end to end (embed the query, then search).
- Memory: bytes of the vector array per stored vector, plus the Python objects of ids/texts
  (measured with tracemalloc for short texts).
"""

from __future__ import annotations

import os
import statistics
import time
import tracemalloc

import numpy as np

from llmlab.data.datasets import load_stsb
from llmlab.search.embeddings import default_embedder, embed
from llmlab.search.semantic_index import SemanticIndex

DIM = 384
QUERIES = [
    "how do I get my dog to stop barking",
    "cheap flights to europe",
    "what causes inflation",
    "a man is playing the guitar",
    "recipes with leftover rice",
]


def sentences(n: int) -> list[str]:
    """The first ``n`` STS-B test sentences (both sides of each pair, in file order)."""
    return [s for pair in load_stsb() for s in (pair.sentence1, pair.sentence2)][:n]


def random_index(n: int, model) -> SemanticIndex:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, DIM), dtype=np.float32)  # (n, 384), normalised by add()
    index = SemanticIndex(model)
    index.add([f"doc {i}" for i in range(n)], vectors=vectors)
    return index


def timed_ms(fn, repeat: int, clock=time.perf_counter) -> list[float]:
    """Milliseconds per call; ``clock=time.process_time`` counts only CPU time this process used."""
    out = []
    for _ in range(repeat):
        t = clock()
        fn()
        out.append((clock() - t) * 1000)
    return out


def latency(n: int, model, q_vecs: np.ndarray) -> None:
    index = random_index(n, model)
    lat = []
    for q in q_vecs:
        lat += timed_ms(lambda q=q: index.search_vector(q, k=5), 40)
    cpu = timed_ms(lambda: index.search_vector(q_vecs[0], k=5), 40, clock=time.process_time)
    e2e = timed_ms(lambda: index.search(QUERIES[0], k=5), 20)
    many = np.tile(q_vecs, (7, 1))[:32]  # (32, 384)
    batch = timed_ms(lambda: index.vectors @ many.T, 5)  # (n, 32) scores in one product
    print(
        f"n={n:>7,}: search (top-5 of {n:,} x {DIM}) wall median {statistics.median(lat):.2f} ms, "
        f"p95 {np.percentile(lat, 95):.2f} ms, best {min(lat):.2f} ms; "
        f"CPU time median {statistics.median(cpu):.2f} ms; "
        f"end to end incl. query embedding median {statistics.median(e2e):.1f} ms; "
        f"scoring 32 queries in one product: {statistics.median(batch) / 32:.2f} ms per query"
    )


def main() -> None:
    import torch

    print(
        f"CPU threads: torch {torch.get_num_threads()}, os.cpu_count() {os.cpu_count()}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    model = default_embedder()
    embed(["warm up"] * 8, model=model)

    texts = sentences(1000)
    for batch_size in (32, 64):
        t = time.perf_counter()
        embed(texts, batch_size=batch_size, model=model, show_progress=False)
        dt = time.perf_counter() - t
        print(
            f"embedding throughput, batch {batch_size}: {len(texts) / dt:.0f} texts/s "
            f"({len(texts)} STS-B sentences in {dt:.1f} s)"
        )

    q_vecs = embed(QUERIES, model=model)  # (5, 384) real query embeddings
    query_ms = statistics.median(timed_ms(lambda: embed(QUERIES[0], model=model), 20))
    print(f"embedding one query: {query_ms:.1f} ms (median of 20)")

    for n in (10_000, 100_000):
        latency(n, model, q_vecs)

    n = 10_000
    tracemalloc.start()
    index = random_index(n, model)
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"memory per vector: {index.vectors.nbytes / n:.0f} bytes of float32 vector "
        f"({DIM} x 4 B); {current / n:.0f} bytes with ids, texts and metadata "
        f"(texts like 'doc 1234'; real passages add their own length)"
    )
    print(f"100,000 vectors: {100_000 * index.vectors.nbytes / n / 2**20:.0f} MiB of vectors")


if __name__ == "__main__":
    main()
