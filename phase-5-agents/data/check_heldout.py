"""The research modes on questions nobody tuned them on: gold answers from another field.

The facts mode's rules (question forms, typed spans, title match) were written while looking at
the 40 questions of research_questions.jsonl. This script asks new questions about the corpus's
*distractor* articles, whose gold answers come from each article's Wikipedia ``description``
(e.g. "English theoretical physicist (1942–2018)"), not from the lead the agent reads:

- "What nationality was X?" for every person whose description starts with a nationality
  (gold: every nationality word before the dates: "Polish-British writer" accepts
  "Polish-British", "Polish" and "British"; "Russian and French artist" both);
- "Who was born first, X or Y?" for consecutive pairs of those people (gold: the earlier birth
  year of the two descriptions). The leads mostly omit birth dates: a design should abstain;
- the capital questions both ways for every description "Capital (and largest city) of C".

Prints, per mode, correct / wrong shown / abstained with 95% Wilson intervals, per kind too.
Run: python check_heldout.py [MODE ...]   (default: facts rag; several minutes on 2 cores)
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict

from llmlab.data.datasets import load_research_questions
from llmlab.evaluation.metrics import wilson_ci
from llmlab.research.agent import research_many
from llmlab.research.corpus import Corpus, wiki_articles, wiki_corpus
from llmlab.research.run import score

DEMONYM = r"(?:[A-Z][a-z]+(?:an|ian|ese|ish|ic|i|ch)|Soviet|Greek|Thai|Swiss|Dutch|French|Czech)"
PERSON = re.compile(rf"({DEMONYM}(?:[-–]{DEMONYM})*)\b[^(]*\((?:c\. )?(?:born )?(\d{{3,4}})")
CAPITAL = re.compile(
    r"(?:The )?[Cc]apital(?: city)?(?: and (?:the )?largest city)? of (?:the )?([A-Z]\w+)"
)


def name(title: str) -> str:
    return re.sub(r"\s*\([^)]*\)$", "", title)


def build() -> list[dict]:
    """The held-out questions: question, answers, kind (no gold files: not needed to score)."""
    gold = {t for q in load_research_questions() for t in q.gold}
    people, out = [], []
    for a in wiki_articles():
        if a.title in gold:
            continue
        desc = (a.description or "").strip()
        m = PERSON.match(desc)
        if m and "Empire" not in a.title and "–" not in desc.split("(")[0][-3:]:
            first = m.group(1)  # "Japanese-British", or "Russian" of "Russian and French artist"
            also = re.match(rf"\s+and\s+({DEMONYM})\b", desc[m.end(1) :])
            parts = re.split(r"[-–]", first) + ([also.group(1)] if also else [])
            nationalities = list(dict.fromkeys([first, *parts]))
            people.append((name(a.title), int(m.group(2))))
            q = f"What nationality was {name(a.title)}?"
            out.append({"question": q, "answers": nationalities, "kind": "nationality"})
        m = CAPITAL.fullmatch(desc)
        if m:
            city, country = name(a.title), m.group(1)
            out.append(
                {
                    "question": f"What is the capital of {country}?",
                    "answers": [city],
                    "kind": "capital",
                }
            )
            out.append(
                {
                    "question": f"Which country is {city} the capital of?",
                    "answers": [country],
                    "kind": "capital",
                }
            )
    for (x, bx), (y, by) in zip(people[::2], people[1::2], strict=False):
        if bx != by:
            out.append(
                {
                    "question": f"Who was born first, {x} or {y}?",
                    "answers": [x if bx < by else y],
                    "kind": "born_first",
                }
            )
    return out


def share(hits: float, n: int) -> str:
    lo, hi = wilson_ci(int(hits), n)
    return f"{hits / n:.2f} [{lo:.2f}, {hi:.2f}]"


def main(modes: list[str]) -> None:
    rows = build()
    corpus = Corpus(wiki_corpus())
    kinds = defaultdict(int)
    for r in rows:
        kinds[r["kind"]] += 1
    print(f"{len(rows)} held-out questions: {dict(kinds)}")
    for mode in modes:
        extra = {"k": 2} if mode == "rag" else {}
        results = research_many([r["question"] for r in rows], corpus, mode=mode, **extra)
        got = [score(res, r["answers"], []) for res, r in zip(results, rows, strict=True)]
        n = len(rows)
        right, wrong = sum(g["correct"] for g in got), sum(g["wrong"] for g in got)
        print(
            f"{mode:<7} correct {share(right, n)} | wrong shown {share(wrong, n)} | "
            f"abstained {share(n - right - wrong, n)}"
        )
        for kind in kinds:
            idx = [i for i, r in enumerate(rows) if r["kind"] == kind]
            c = sum(got[i]["correct"] for i in idx)
            w = sum(got[i]["wrong"] for i in idx)
            print(f"  {kind:<12} {int(c)}/{len(idx)} right, {int(w)} wrong shown")


if __name__ == "__main__":
    main(sys.argv[1:] or ["facts", "rag"])
