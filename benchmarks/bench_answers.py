"""Benchmark the answers of "chat with your docs" on real documentation: right, wrong, abstained.

    python benchmarks/bench_answers.py                      # every mode on every eval set
    python benchmarks/bench_answers.py --modes extract      # the default mode only (no model)
    python benchmarks/bench_answers.py --sets tune --curve  # the curve the threshold came from

Goals (issue 20): on a folder of real documentation, at least 10 of 14 questions right with the
right file cited, at most 2 wrong without abstaining, every off-topic question refused; ``ask``
first answer <= 10 s including model load on 2 idle cores, later answers <= 5 s.

- Sets: ``llmlab.rag.answer_eval.load_eval_set``: ``tune`` (the settings were chosen on it),
  ``test`` and ``test2`` (kept for reporting), each ~16 files of real docs with hand-checked
  questions and off-topic ones; ``faq``: 40 Python FAQ questions (seed 0) over the FAQ pages,
  right = a citation overlaps the FAQ's own answer (no gold strings there).
- Modes: ``extract`` (code quotes the best lines), ``quote`` (the model picks which lines to
  copy, constrained), ``generate`` (the model writes; the checker removes unsupported
  sentences). Each question is asked once with abstention off (so its confidence and its
  grade are both known), then graded at ``MIN_SCORE``: right / wrong / abstained.
- Curve (``--curve``): coverage, accuracy, wrong answers and off-topic refusals per threshold,
  with 92 extra off-topic questions (80 "What is X?" from Wikipedia titles, 12 near misses).
- Before: ``phase-4-rag/data/docs-eval/before-a823e2e.jsonl`` holds the answers the code of
  commit a823e2e gave (its only mode: the model writes, k=5, 60 tokens, its own abstention),
  logged once on the same questions; they are graded here by the same ``grade`` rules.
- Timings: per-question seconds (models loaded); and ``llmlab ask`` in a fresh process (model
  load included) for each mode, on the tune folder, twice (the first also builds the index).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

NEAR_MISSES = [
    "How do I read an Excel spreadsheet with pandas?",
    "How do I train a neural network in PyTorch?",
    "How do I deploy a Django app to Heroku?",
    "How do I center a div in CSS?",
    "Which JavaScript framework is fastest?",
    "How do I configure nginx as a reverse proxy?",
    "How do I plot a histogram with matplotlib?",
    "What is the best way to learn Rust?",
    "How do I resolve a git merge conflict?",
    "How many moons does Jupiter have?",
    "How do I bake sourdough bread?",
    "What is the capital of Australia?",
]
THRESHOLDS = [round(0.30 + 0.05 * i, 2) for i in range(15)]  # 0.30 ... 1.00


def faq_set(n: int = 40):
    """The Python FAQ as an eval set: a cached folder of its pages and n questions."""
    import random

    from llmlab.data.datasets import load_faq_pages, load_python_faq
    from llmlab.rag.answer_eval import EvalQuestion, EvalSet
    from llmlab.runtime.model_cache import cache_dir

    folder = cache_dir() / "example-docs" / "python-faq"
    for page in load_faq_pages():
        path = folder / page.path
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != page.text:
            path.write_text(page.text, encoding="utf-8")
    items = random.Random(0).sample(load_python_faq(), n)
    qs = [
        EvalQuestion(id=f"faq{i}", question=f.question, file=f.doc_path)
        for i, f in enumerate(items)
    ]
    return EvalSet(name="faq", folder=folder, questions=qs), items


def run_set(name, modes, lm, embedder):
    from llmlab.rag.answer_eval import grade, load_eval_set, on_gold_lines
    from llmlab.rag.docchat import DocChat
    from llmlab.search.docs_index import DocsIndex

    if name == "faq":
        es, items = faq_set()
    else:
        es, items = load_eval_set(name), None
    index = DocsIndex(es.folder, embedder=embedder)
    index.update(progress=False)
    out = {}
    for mode in modes:
        bot = DocChat(index, lm=lm, mode=mode, min_score=-1e9, k=5, max_new_tokens=60)
        rows = []
        for i, q in enumerate(es.questions):
            bot.reset()
            t0 = time.perf_counter()
            a = bot.ask(q.question)
            seconds = time.perf_counter() - t0
            if items is not None:  # FAQ: right = a citation overlaps the FAQ's own answer
                f = items[i]
                ok = not a.abstained and any(
                    c.passage.source == f.doc_path
                    and c.passage.start < f.end
                    and f.start < c.passage.end
                    for c in a.citations
                )
                g, lines = ("right" if ok else "abstained" if a.abstained else "wrong"), ok
            else:
                g, lines = grade(a, q), (not a.abstained and on_gold_lines(a, q))
            rows.append((q, a, g, lines, seconds))
        out[mode] = rows
    return es, out


def before_row(name: str) -> str:
    """The logged answers of commit a823e2e on set ``name``, graded like the others."""
    import json

    from llmlab.data.datasets import data_file
    from llmlab.rag.answer_eval import EVAL_DIR, contains, load_eval_set

    path = data_file(f"{EVAL_DIR}/before-a823e2e.jsonl")
    logged = [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    rows = {r["id"]: r for r in logged if r["set"] == name}
    es = load_eval_set(name)
    right = wrong = abstained = off_ok = 0
    for q in es.questions:
        r = rows[q.id]
        if q.off_topic:
            off_ok += r["abstained"]
        elif r["abstained"]:
            abstained += 1
        else:
            cited = {c.rsplit(":", 1)[0] for c in r["cited"]}
            ok = q.file in cited and all(any(contains(r["answer"], m) for m in g) for g in q.must)
            right += ok
            wrong += not ok
    n, off = len(es.on_topic), len(es.off_topic)
    return f"{'before':9} {right:>3}/{n:<2} {wrong:>6} {abstained:>6} {'':>10} {off_ok:>8}/{off:<3} {'':>11}"


def summary(rows, threshold):
    """(right, wrong, abstained, on gold lines, off refused, off total) at ``threshold``."""
    right = wrong = abstained = lines = off_ok = off_n = 0
    for q, a, g, on_lines, _ in rows:
        below = a.confidence < threshold or g == "abstained"
        if q.off_topic:
            off_n += 1
            off_ok += below
        elif below:
            abstained += 1
        else:
            right += g == "right"
            wrong += g != "right"
            lines += bool(on_lines)
    return right, wrong, abstained, lines, off_ok, off_n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="tune,test,test2,faq")
    parser.add_argument("--modes", default="extract,quote,generate")
    parser.add_argument("--curve", action="store_true", help="print the selective-answering curve")
    parser.add_argument("--no-cold", action="store_true", help="skip the fresh-process timings")
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from llmlab.rag.docchat import MIN_SCORE
    from llmlab.runtime.models import load_embedder, load_lm

    modes = args.modes.split(",")
    embedder = load_embedder()
    lm = load_lm() if set(modes) - {"extract"} else None
    print(
        f"Abstention threshold MIN_SCORE = {MIN_SCORE} (confidence = the best answer unit's score)\n"
    )
    for name in filter(None, args.sets.split(",")):  # --sets "" runs only the timings
        es, results = run_set(name, modes, lm, embedder)
        n = len(es.on_topic)
        print(
            f"## {name}: {es.folder.name}, {len(es.on_topic)} questions + {len(es.off_topic)} off-topic"
        )
        print(
            f"{'mode':9} {'right':>6} {'wrong':>6} {'abst.':>6} {'gold lines':>10} {'off refused':>12} {'s/question':>11}"
        )
        if name != "faq":
            print(before_row(name) + "  (commit a823e2e: generate, logged)")
        for mode, rows in results.items():
            r, w, ab, lines, ok, off = summary(rows, MIN_SCORE)
            secs = statistics.median(s for *_, s in rows)
            print(
                f"{mode:9} {r:>3}/{n:<2} {w:>6} {ab:>6} {lines:>10} {ok:>8}/{off:<3} {secs:>11.2f}"
            )
        for mode, rows in results.items():
            bad = [
                f"{q.id}:{a.citations[0].passage.where if a.citations else '-'}"
                for q, a, g, *_ in rows
                if not q.off_topic and g != "right"
            ]
            print(f"  {mode} not right: {', '.join(bad) or '-'}")
        if args.curve and "extract" in results:
            curve(results["extract"], es, embedder)
        print()
    if not args.no_cold:
        cold(modes)


def curve(rows, es, embedder):
    from llmlab.data.datasets import wiki_subset
    from llmlab.rag.answer_eval import selective_curve
    from llmlab.rag.docchat import DocChat
    from llmlab.search.docs_index import DocsIndex

    on = [(a.confidence, g == "right") for q, a, g, *_ in rows if not q.off_topic]
    bank = [f"What is {a.title}?" for a in wiki_subset(80, seed=1)] + NEAR_MISSES
    bot = DocChat(DocsIndex(es.folder, embedder=embedder), mode="extract", min_score=-1e9)
    bot.index.update(progress=False)
    off = [a.confidence for q, a, *_ in rows if q.off_topic]
    off += [a.confidence for a in bot.ask_many(bank)]
    print(f"selective answering (extract), {len(on)} on-topic, {len(off)} off-topic questions:")
    print(f"{'threshold':>9} {'coverage':>9} {'accuracy':>9} {'wrong':>6} {'off refused':>12}")
    for p in selective_curve([s for s, _ in on], [r for _, r in on], off, THRESHOLDS):
        print(
            f"{p.threshold:>9.2f} {p.coverage:>9.2f} {p.accuracy:>9.2f} {p.wrong:>6} {p.off_refused:>12.3f}"
        )
    print(f"highest off-topic confidence: {max(off):.3f}")


def cold(modes):
    from llmlab.rag.answer_eval import load_eval_set

    folder = str(load_eval_set("tune").folder)
    q = "How do I make requests go through a proxy server?"
    print("## `llmlab ask` in a fresh process (model load included), tune folder")
    for mode in modes:
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-m", "llmlab", "ask", folder, q, "--mode", mode, "--json"],
                capture_output=True,
                text=True,
                timeout=600,
            )
            times.append(time.perf_counter() - t0)
            if out.returncode:
                print(f"  {mode}: failed: {out.stderr.strip()[:200]}")
                break
        print(
            f"  {mode:9} "
            + ", ".join(f"{t:.1f} s" for t in times)
            + "  (wall clock, whole command)"
        )


if __name__ == "__main__":
    main()
