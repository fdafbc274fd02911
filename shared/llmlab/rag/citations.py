"""Citation checking: does each sentence of an answer say what the sources it cites say?

Covers the ALCE definitions (Gao et al. 2023, arXiv 2305.14627), per answer:
- citation recall: the share of answer sentences whose cited sources, together, entail the
  sentence (a sentence that cites nothing counts as unsupported);
- citation precision: the share of citations that are needed: a citation counts if its source
  alone entails the sentence, or if the sentence's sources together entail it and lose that
  without this one (ALCE's "irrelevant citation" is the opposite);
- ``verify_citations(answer, sources)``: one ``CitationCheck`` per citation, with the source
  sentence that supports the claim best quoted as ``text`` and ``verified`` = that citation
  counts for precision (a source id that is not in ``sources`` is never verified).

Citations are written ``[source]`` after the sentence (``[a.txt][b.txt]`` or ``[a.txt, b.txt]``).

"Entails" is judged by a CPU proxy, ``entails(claim, passage)``, since no NLI model ships
offline: the claim passes if at least ``MIN_SUPPORT`` of its content words occur in the passage
(``llmlab.evaluation.metrics.support_score``), and EVERY number and capitalised name in it does, and
it adds no negation the passage lacks. It catches invented facts ("directed by Alfred Hitchcock"
cited to the lead of *Jaws*), wrong years and sources that do not exist. It fails both ways:
- fooled by right words in a wrong order: "Steven Spielberg is a 1975 film directed by Jaws"
  passes against "Jaws is a 1975 film directed by Steven Spielberg" (same words, false claim);
- blind to paraphrase and inference: "The shark film premiered in the mid-seventies" (true)
  fails, and so does any comparison ("Vertigo came out before Psycho"), because "before" is
  reasoning over two facts, not a word in either source. Cite the two facts in two sentences.

Leaves out: NLI models, partial support scores per claim, and splitting a sentence into claims.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from llmlab.evaluation.metrics import STOPWORDS, normalize_answer, support_score
from llmlab.search.chunking import sentence_spans

MIN_SUPPORT = 0.5  # share of the claim's content words found in the passage (as llmlab.rag.docchat)
CITE = re.compile(r"\[([^\[\]\n]{1,200})\]")  # [a.txt] or [a.txt, b.txt]
NEGATIONS = frozenset({"not", "no", "never", "neither", "nor", "none", "without"})
FILLER = frozenset({"yes", "however", "also", "according", "answer", "source", "sources"})


@dataclass(frozen=True)
class CitationCheck:
    """One citation: the answer ``sentence`` as written (so ``answer.replace(check.sentence, ...)``
    works), the ``source`` it cites, the best supporting sentence of that source (``text``, ""
    if the source does not exist) and whether it counts."""

    sentence: str
    source: str
    text: str
    verified: bool


@dataclass(frozen=True)
class Claim:
    """An answer ``sentence`` as written, its ``text`` without citations (what is checked) and
    the source ids it cites, in order."""

    sentence: str
    text: str
    cites: tuple[str, ...]

    def citing(self, more: tuple[str, ...]) -> Claim:
        return replace(self, cites=tuple(dict.fromkeys(self.cites + more)))


def _words(text: str) -> list[str]:
    """Normalised words, possessive 's dropped: ``_words("Kubrick's 2001!") -> ['kubrick', '2001']``."""
    return normalize_answer(re.sub(r"['’]s\b", "", text)).split()


def key_terms(claim: str) -> set[str]:
    """Numbers and capitalised names of ``claim``: the words a faithful claim must not change.

    ``key_terms("Jaws was directed by Alfred Hitchcock in 1975.") -> {'jaws', 'alfred',
    'hitchcock', '1975'}``.
    """
    raw = re.findall(r"\b(?:[A-Z][\w'’-]*|\d[\d,.]*\d|\d)", re.sub(r"['’]s\b", "", claim))
    terms = {w for t in raw for w in _words(t)}
    return {t for t in terms if t not in STOPWORDS and t not in FILLER}


def support(claim: str, passage: str) -> float:
    """Share of the claim's content words found in the passage (0 if it has none)."""
    try:
        return support_score(re.sub(r"['’]s\b", "", claim), re.sub(r"['’]s\b", "", passage))
    except ValueError:  # only stopwords
        return 0.0


def entails(claim: str, passage: str, min_support: float = MIN_SUPPORT) -> bool:
    """The CPU proxy for "``passage`` entails ``claim``" (see the module docstring for its limits)."""
    seen = set(_words(passage))
    words = set(_words(claim))
    return (
        support(claim, passage) >= min_support
        and key_terms(claim) <= seen
        and not (words & NEGATIONS) - seen
    )


def best_sentence(claim: str, passage: str) -> str:
    """The sentence of ``passage`` that supports ``claim`` best (the first of equals)."""
    sentences = [passage[a:b].strip() for a, b in sentence_spans(passage)] or [passage.strip()]
    return max(sentences, key=lambda s: (support(claim, s), len(key_terms(claim) & set(_words(s)))))


def _cites(text: str) -> tuple[str, ...]:
    """Source ids cited in ``text``: ``_cites("x [a.txt][b.txt, c.txt]") -> ('a.txt', 'b.txt', 'c.txt')``."""
    return tuple(c.strip() for g in CITE.findall(text) for c in re.split(r"[,;]", g) if c.strip())


def claims(answer: str) -> list[Claim]:
    """The answer's sentences with their citations; a citation written after the full stop
    ("... 1975. [a.txt]") belongs to the sentence before it. Fragments with fewer than two
    content words ("Yes.", a lone "[a.txt]") are not claims."""
    out: list[Claim] = []
    for a, b in sentence_spans(answer):
        seg = answer[a:b].strip()
        lead = re.match(r"(?:\s*\[[^\[\]\n]{1,200}\])+", seg)  # "[a.txt] Next sentence."
        if lead and out:
            out[-1] = out[-1].citing(_cites(lead.group()))
            seg = seg[lead.end() :].strip()
        cites = _cites(seg)
        text = re.sub(r"\s+([.,;:!?])", r"\1", CITE.sub("", seg)).strip()
        content = [w for w in _words(text) if w not in STOPWORDS]
        if len(content) < 2:
            if out and cites:  # "[a.txt]" alone after a sentence: that sentence's citation
                out[-1] = out[-1].citing(cites)
            continue
        out.append(Claim(sentence=seg, text=text, cites=tuple(dict.fromkeys(cites))))
    return out


def match_source(cite: str, sources: Mapping[str, str]) -> str | None:
    """The key of ``sources`` that ``cite`` names: exact, else the same file name or stem
    ignoring case (``"jaws_film"`` -> ``"Jaws_film.txt"``); None if it names no source."""
    if cite in sources:
        return cite
    want = cite.strip().strip("'\"`").lower()
    for key in sources:
        p = PurePosixPath(key)
        if want in (key.lower(), p.name.lower(), p.stem.lower()):
            return key
    return None


def _check_claim(claim: Claim, sources: Mapping[str, str]) -> tuple[bool, list[CitationCheck]]:
    """(the cited sources together entail the claim, one check per citation)."""
    keys = [match_source(c, sources) for c in claim.cites]
    texts = {k: sources[k] for k in keys if k is not None}
    joint = bool(texts) and entails(claim.text, "\n".join(texts.values()))
    checks = []
    for cite, key in zip(claim.cites, keys, strict=True):
        if key is None:
            checks.append(
                CitationCheck(sentence=claim.sentence, source=cite, text="", verified=False)
            )
            continue
        alone = entails(claim.text, texts[key])
        others = "\n".join(t for k, t in texts.items() if k != key)
        needed = joint and not (others and entails(claim.text, others))
        checks.append(
            CitationCheck(
                sentence=claim.sentence,
                source=key,
                text=best_sentence(claim.text, texts[key]),
                verified=alone or needed,
            )
        )
    return joint, checks


def _check_sources(sources: Mapping[str, str]) -> None:
    if not isinstance(sources, Mapping) or not all(isinstance(v, str) for v in sources.values()):
        raise ValueError("sources must be a dict {source id: its text}, e.g. {'a.txt': '...'}.")


def verify_citations(answer: str, sources: Mapping[str, str]) -> list[CitationCheck]:
    """One check per citation of ``answer``, in order (see ``CitationCheck``).

    ``verify_citations("Jaws is a 1975 film [j.txt].", {"j.txt": "Jaws is a 1975 thriller film."})``
    -> ``[CitationCheck('Jaws is a 1975 film [j.txt].', 'j.txt', 'Jaws is a 1975 thriller film.',
    True)]``.
    """
    _check_sources(sources)
    return [c for claim in claims(answer) for c in _check_claim(claim, sources)[1]]


@dataclass(frozen=True)
class CitationScores:
    """ALCE citation recall and precision of one answer (0.0 when there is nothing to count)."""

    recall: float
    precision: float
    n_sentences: int
    n_citations: int


def citation_scores(answer: str, sources: Mapping[str, str]) -> CitationScores:
    """Recall over the answer's claims and precision over its citations, in one pass."""
    _check_sources(sources)
    results = [_check_claim(c, sources) for c in claims(answer)]
    checks = [c for _, cs in results for c in cs]
    recall = sum(ok for ok, _ in results) / len(results) if results else 0.0
    precision = sum(c.verified for c in checks) / len(checks) if checks else 0.0
    return CitationScores(
        recall=recall, precision=precision, n_sentences=len(results), n_citations=len(checks)
    )


def citation_recall(answer: str, sources: Mapping[str, str]) -> float:
    """Share of the answer's sentences that their citations support (uncited = unsupported)."""
    return citation_scores(answer, sources).recall


def citation_precision(answer: str, sources: Mapping[str, str]) -> float:
    """Share of the answer's citations that are needed to support their sentence."""
    return citation_scores(answer, sources).precision
