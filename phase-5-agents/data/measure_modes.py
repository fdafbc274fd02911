"""The research modes on all 40 questions: the table in notes.md.

For each mode: correct, wrong shown (an answer given and not correct) and abstained (no
answer), each a share of the 40 questions with its 95% Wilson interval, tokens per question and
the seconds the run took; then correct per kind of question. ``verify`` reuses ``plan``'s runs
(``revise`` makes no model call). The notebook runs the same measurement on a subset
(research-agent.ipynb, ``FULL = True`` for all 40).
Run: python measure_modes.py [MODE ...]   (default: facts rag plan verify; minutes on 2 cores)
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict

from llmlab.chat.local import load_chat
from llmlab.data.datasets import load_research_questions
from llmlab.evaluation.metrics import wilson_ci
from llmlab.research.agent import research_many
from llmlab.research.corpus import Corpus, wiki_corpus
from llmlab.research.run import revise, score


def share(hits: float, n: int) -> str:
    lo, hi = wilson_ci(int(hits), n)
    return f"{hits / n:.2f} [{lo:.2f}, {hi:.2f}]"


def main(modes: list[str]) -> None:
    questions = load_research_questions()
    corpus, chat = Corpus(wiki_corpus()), load_chat()
    texts, n = [q.question for q in questions], len(questions)
    done = {}
    for mode in modes:
        start = time.perf_counter()
        if mode == "verify" and "plan" in done:
            results = [revise(r) for r in done["plan"]]
        else:
            results = research_many(
                texts, corpus, chat=chat, mode=mode, **({"k": 2} if mode == "rag" else {})
            )
        done[mode] = results
        took = time.perf_counter() - start
        got = [score(r, q.answers, q.sources) for r, q in zip(results, questions, strict=True)]
        right, wrong = sum(g["correct"] for g in got), sum(g["wrong"] for g in got)
        tokens = sum(g["tokens"] for g in got) / n
        print(
            f"{mode:<7} correct {share(right, n)} | wrong shown {share(wrong, n)} | "
            f"abstained {share(n - right - wrong, n)} | {tokens:.0f} tok/q | {took:.0f} s"
        )
        per_kind = defaultdict(list)
        for g, q in zip(got, questions, strict=True):
            per_kind[q.kind].append(g["correct"])
        print("  " + ", ".join(f"{k} {int(sum(v))}/{len(v)}" for k, v in per_kind.items()))


if __name__ == "__main__":
    main(sys.argv[1:] or ["facts", "rag", "plan", "verify"])
