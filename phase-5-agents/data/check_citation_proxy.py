"""How the citation check (llmlab.rag.citations) judges faithful vs fabricated answers on the question set.

For every research question, one templated answer sentence with the right answer and one with a
wrong answer (another question's answer of the same kind; for "which first" the two titles
swapped), each citing the question's gold sources. Prints, per kind of question, how many
faithful sentences the proxy verifies and how many fabricated ones it catches.
Run: python check_citation_proxy.py
"""

from __future__ import annotations

import re
from collections import defaultdict

from llmlab.data.datasets import ResearchQuestion, load_research_questions, load_wiki_summaries
from llmlab.rag.citations import citation_scores


def name(title: str) -> str:
    return re.sub(r"\s*\([^)]*\)$", "", title)


def sentence(q: ResearchQuestion, answer: str) -> str:
    """A natural one-sentence answer with ``answer`` in it, citing the gold sources."""
    g = [name(t) for t in q.gold]
    if q.kind == "film_year":
        text = f"{g[0]} was released in {answer}"
    elif q.kind == "film_director":
        text = f"{g[0]} was directed by {answer}"
    elif q.kind == "novel_author":
        text = f"{g[0]} was written by {answer}"
    elif q.kind == "capital" and q.question.startswith("What is"):
        text = f"{answer} is the capital of {q.question.split()[-1].rstrip('?')}"
    elif q.kind == "capital":
        text = f"{g[0]} is the capital of {answer}"
    elif q.kind == "which_first":
        text = f"{answer} came out before {[t for t in g if t != answer][0]}"
    else:  # director_nationality
        text = f"The director of {g[0]}, {g[1]}, was {answer}"
    return text + " " + "".join(f"[{s}]" for s in q.sources) + "."


def check() -> dict[str, list[int]]:
    """``{kind: [n, faithful verified, fabricated caught]}``."""
    leads = {a.title: a.extract for a in load_wiki_summaries()}
    questions = load_research_questions()
    rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for q in questions:
        sources = {s: f"{t}\n\n{leads[t]}\n" for t, s in zip(q.gold, q.sources, strict=True)}
        if q.kind == "which_first":
            wrong = [name(t) for t in q.gold if name(t) != q.answers[0]][0]
        else:
            wrong = next(
                o.answers[0] for o in questions if o.kind == q.kind and o.answers[0] != q.answers[0]
            )
        row = rows[q.kind]
        row[0] += 1
        row[1] += citation_scores(sentence(q, q.answers[0]), sources).recall == 1.0
        row[2] += citation_scores(sentence(q, wrong), sources).recall == 0.0
    return dict(rows)


if __name__ == "__main__":
    rows = check()
    print(f"{'kind':22s}  n  faithful verified  fabricated caught")
    for kind, (n, ok, caught) in rows.items():
        print(f"{kind:22s} {n:2d}  {ok:17d}  {caught:17d}")
    n, ok, caught = (sum(r[i] for r in rows.values()) for i in range(3))
    print(f"{'all':22s} {n:2d}  {ok:17d}  {caught:17d}")
