"""Build research_questions.jsonl from the Wikipedia summaries (run: python build_research_questions.py).

The questions are written from hand-picked articles; every answer string is taken from, and
checked against, the text of the gold leads (the script stops if one is missing), so an answer
is always something a reader of those leads can copy. Two-hop questions need two articles:
"which came out first" compares the years in two leads, "what nationality was the director of"
chains a film's lead (its director) to the director's lead (the nationality).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from llmlab.data.datasets import load_wiki_summaries
from llmlab.research.corpus import wiki_filename

OUT = Path(__file__).with_name("research_questions.jsonl")
BY_TITLE = {a.title: a for a in load_wiki_summaries()}
YEAR = re.compile(r"\b(?:is|was) an? (\d{4})\b")  # "is a 1968 epic science fiction film"

FILMS = {  # title -> director (as the film's lead spells it)
    "2001: A Space Odyssey": "Stanley Kubrick",
    "Bicycle Thieves": "Vittorio De Sica",
    "Breathless (1960 film)": "Jean-Luc Godard",
    "Casablanca (film)": "Michael Curtiz",
    "Jaws (film)": "Steven Spielberg",
    "La Dolce Vita": "Federico Fellini",
    "Lawrence of Arabia (film)": "David Lean",
    "Psycho (1960 film)": "Alfred Hitchcock",
    "Seven Samurai": "Akira Kurosawa",
    "Spirited Away": "Hayao Miyazaki",
    "The Godfather": "Francis Ford Coppola",
    "The Seventh Seal": "Ingmar Bergman",
    "Tokyo Story": "Yasujirō Ozu",
    "Vertigo (film)": "Alfred Hitchcock",
    "Mirror (1975 film)": "Andrei Tarkovsky",
    "Toy Story": "John Lasseter",
}
NOVELS = {  # title -> author
    "Moby-Dick": "Herman Melville",
    "The Great Gatsby": "F. Scott Fitzgerald",
    "To the Lighthouse": "Virginia Woolf",
    "Dracula": "Bram Stoker",
    "One Hundred Years of Solitude": "Gabriel García Márquez",
    "On the Road": "Jack Kerouac",
}
FILM_YEAR = [
    "Bicycle Thieves",
    "Casablanca (film)",
    "Jaws (film)",
    "Seven Samurai",
    "The Godfather",
    "Tokyo Story",
    "Toy Story",
    "The Seventh Seal",
]
DIRECTED = [
    "2001: A Space Odyssey",
    "La Dolce Vita",
    "Lawrence of Arabia (film)",
    "Psycho (1960 film)",
    "Spirited Away",
    "Mirror (1975 film)",
]
WROTE = ["Moby-Dick", "Dracula", "To the Lighthouse", "One Hundred Years of Solitude"]
CAPITAL_OF = ["Accra", "Ankara", "Bogotá", "Damascus", "Harare", "Dakar"]  # city -> country
FIRST = [
    ("Jaws (film)", "The Godfather"),
    ("Casablanca (film)", "Seven Samurai"),
    ("Toy Story", "Spirited Away"),
    ("Vertigo (film)", "Psycho (1960 film)"),
    ("Tokyo Story", "Bicycle Thieves"),
    ("The Seventh Seal", "La Dolce Vita"),
]
NOVEL_FIRST = [
    ("Moby-Dick", "Dracula"),
    ("The Great Gatsby", "To the Lighthouse"),
    ("On the Road", "One Hundred Years of Solitude"),
]
NATIONALITY = {  # film -> the director's nationality, as the director's lead states it
    "2001: A Space Odyssey": "American",
    "Psycho (1960 film)": "English",
    "Seven Samurai": "Japanese",
    "La Dolce Vita": "Italian",
    "The Seventh Seal": "Swedish",
    "Mirror (1975 film)": "Soviet",
    "Bicycle Thieves": "Italian",
}


def name(title: str) -> str:
    """The title as a question says it: ``"Jaws (film)" -> "Jaws"``."""
    return re.sub(r"\s*\([^)]*\)$", "", title)


def lead(title: str) -> str:
    return BY_TITLE[title].extract


def year(title: str) -> str:
    m = YEAR.search(lead(title))
    if not m:
        raise ValueError(f"No 'is a YYYY' year in the lead of {title!r}.")
    return m.group(1)


def q(kind: str, question: str, answers: list[str], gold: list[str]) -> dict:
    text = " ".join(lead(t) for t in gold)
    for a in answers:
        if a not in text:
            raise ValueError(f"{a!r} is not in the gold leads of {question!r}.")
    return {
        "question": question,
        "answers": answers,
        "gold": gold,
        "sources": [wiki_filename(t) for t in gold],
        "hops": len(gold),
        "kind": kind,
    }


def build() -> list[dict]:
    out = []
    for t in FILM_YEAR:
        out.append(q("film_year", f"In what year was the film {name(t)} released?", [year(t)], [t]))
    for t in DIRECTED:
        d = FILMS[t]
        out.append(q("film_director", f"Who directed the film {name(t)}?", [d, d.split()[-1]], [t]))
    for t in WROTE:
        a = NOVELS[t]
        out.append(q("novel_author", f"Who wrote the novel {name(t)}?", [a, a.split()[-1]], [t]))
    for city in CAPITAL_OF:
        m = re.match(
            rf"{re.escape(city)} is the capital(?: city| and largest city)? of "
            r"(?:the )?([A-Z][a-z]+)",
            lead(city),
        )
        if not m:
            raise ValueError(f"No 'is the capital of' in the lead of {city!r}.")
        country = m.group(1)
        if len(out) % 2:
            out.append(q("capital", f"What is the capital of {country}?", [city], [city]))
        else:
            out.append(q("capital", f"Which country is {city} the capital of?", [country], [city]))
    for pairs, what in ((FIRST, "film came out"), (NOVEL_FIRST, "novel was published")):
        for a, b in pairs:
            ya, yb = year(a), year(b)
            if ya == yb:
                raise ValueError(f"{a!r} and {b!r} share the year {ya}.")
            first = a if ya < yb else b
            out.append(
                q(
                    "which_first",
                    f"Which {what} first: {name(a)} or {name(b)}?",
                    [name(first)],
                    [a, b],
                )
            )
    for film, nationality in NATIONALITY.items():
        director = FILMS[film]
        gold = [film, director]
        question = f"What nationality was the director of the film {name(film)}?"
        row = q("director_nationality", question, [nationality], gold)
        if director not in lead(film) or nationality not in lead(director):
            raise ValueError(f"{question!r}: the chain film -> director -> nationality breaks.")
        out.append(row)
    for i, row in enumerate(out, start=1):
        row["id"] = f"r{i:02d}"
    return out


if __name__ == "__main__":
    rows = build()
    with OUT.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps({"id": row.pop("id"), **row}, ensure_ascii=False) + "\n")
    print(f"{len(rows)} questions ({sum(r['hops'] == 2 for r in rows)} two-hop) -> {OUT.name}")
