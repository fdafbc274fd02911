"""Tests for llmlab.search.semantic_index: ranking, saving, model mismatches, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmlab.search.bm25 import BM25Index
from llmlab.search.semantic_index import (
    Hit,
    ModelMismatchError,
    SemanticIndex,
    read_manifest,
    top_k,
)
from tests.doubles import WordEmbedder

# (document, a paraphrase of it that shares almost no words with it)
PARAPHRASES = [
    ("How to stop a puppy from chewing on furniture.", "my young dog keeps biting the sofa"),
    ("Preheat the oven before baking bread.", "warm up the stove prior to making a loaf"),
    ("The stock market fell sharply on Monday.", "shares dropped a lot at the start of the week"),
    (
        "Drink plenty of water when you exercise in hot weather.",
        "stay hydrated during workouts in summer",
    ),
    ("Our flight was delayed by three hours.", "the plane left much later than scheduled"),
    (
        "Restart your router if the internet connection drops.",
        "reboot the modem when wifi stops working",
    ),
    (
        "The child was frightened by the thunderstorm.",
        "the kid got scared of the lightning and rain",
    ),
    ("She is learning to play the violin.", "taking lessons on a string instrument"),
    ("Rent prices in the city have gone up a lot.", "housing is getting more expensive downtown"),
    ("He fixed the leaking tap in the kitchen.", "repaired a dripping faucet"),
    ("The football match ended in a draw.", "the soccer game finished with a tied score"),
    (
        "Remember to back up your photos to an external disk.",
        "save copies of your pictures on another drive",
    ),
    (
        "The doctor prescribed antibiotics for the infection.",
        "a physician gave medicine for bacteria",
    ),
    ("Electric cars are becoming cheaper to buy.", "battery vehicles cost less than before"),
    (
        "Plant tomatoes after the last frost of spring.",
        "sow your vegetables once it stops freezing",
    ),
    ("The museum is closed on public holidays.", "the gallery does not open on national days off"),
    (
        "Use a password manager to keep your accounts safe.",
        "software that stores login secrets securely",
    ),
    (
        "The train to Paris leaves from platform nine.",
        "where does the railway service to France depart",
    ),
    (
        "I can't sleep because my neighbours are noisy.",
        "loud people next door keep me awake at night",
    ),
    (
        "Solar panels turn sunlight into electricity.",
        "photovoltaic cells generate power from the sun",
    ),
]


@pytest.fixture(scope="module")
def paraphrase_index(embedder):
    index = SemanticIndex(embedder)
    index.add([d for d, _ in PARAPHRASES], metadata=[{"n": i} for i in range(len(PARAPHRASES))])
    return index


def recall(top: list[list[Hit]], k: int) -> float:
    """Share of PARAPHRASES whose document is among the first k of its query's hits."""
    found = [i in [h.id for h in hits[:k]] for i, hits in enumerate(top)]
    return sum(found) / len(found)


def test_paraphrase_recall_beats_keywords(paraphrase_index):
    queries = [q for _, q in PARAPHRASES]
    top3 = paraphrase_index.search_many(queries, k=3)  # every query embedded in one batch
    r1, r3 = recall(top3, 1), recall(top3, 3)
    bm25 = BM25Index()
    bm25.add([d for d, _ in PARAPHRASES])
    b1 = recall([bm25.search(q, k=1) for q in queries], 1)
    print(f"paraphrase recall@1 semantic={r1:.2f} recall@3={r3:.2f} bm25@1={b1:.2f}")
    assert r1 >= 0.9
    assert r3 == 1.0
    assert r1 >= b1 + 0.4  # meaning search finds what keyword search misses


def test_search_many_equals_search_one_at_a_time(paraphrase_index):
    queries = ["a dog ruining the couch", "money for bad times"]
    many = paraphrase_index.search_many(queries, k=3)
    for query, hits in zip(queries, many, strict=True):
        one = paraphrase_index.search(query, k=3)
        assert [h.id for h in hits] == [h.id for h in one]
        assert [h.score for h in hits] == pytest.approx([h.score for h in one], abs=1e-5)
    with pytest.raises(ValueError, match="list of queries"):
        paraphrase_index.search_many("one query")


def test_hits_are_sorted_and_complete(paraphrase_index):
    hits = paraphrase_index.search("a dog ruining the couch", k=3)
    assert all(isinstance(h, Hit) for h in hits)
    assert [h.id for h in hits][0] == 0 and hits[0].metadata == {"n": 0}
    assert hits[0].text == PARAPHRASES[0][0]
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    # the scores are the cosine similarities, computed here by hand
    q = paraphrase_index.embedder.encode(["a dog ruining the couch"], normalize_embeddings=True)[0]
    assert scores[0] == pytest.approx(float(paraphrase_index.vectors[0] @ q), abs=1e-5)


def test_k_larger_than_index_returns_all(paraphrase_index):
    hits = paraphrase_index.search("anything at all", k=1000)
    assert len(hits) == len(PARAPHRASES)
    assert sorted(h.id for h in hits) == list(range(len(PARAPHRASES)))


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query(paraphrase_index, query):
    with pytest.raises(ValueError, match="empty"):
        paraphrase_index.search(query)


@pytest.mark.parametrize("k", [0, -3, 1.5, True])
def test_bad_k(paraphrase_index, k):
    with pytest.raises(ValueError, match="k"):
        paraphrase_index.search("dogs", k=k)


def test_top_k_matches_full_sort():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal(1000).astype(np.float32)
    for k in (1, 7, 999, 1000, 5000):
        np.testing.assert_array_equal(top_k(scores, k), np.argsort(-scores, kind="stable")[:k])
    np.testing.assert_array_equal(top_k(np.array([0.5, 0.9, 0.5, 0.5]), 3), [1, 0, 2])  # ties


def test_incremental_add_and_bad_ids():
    index = SemanticIndex(WordEmbedder())
    index.add(["red apple", "green pear"], ids=["a", "b"])
    index.add(["blue sky"], ids=["c"], metadata=[{"src": "x"}])
    assert len(index) == 3 and index.vectors.shape == (3, 16)
    assert index.search("blue sky", k=1)[0].id == "c"
    with pytest.raises(ValueError, match="Duplicate"):
        index.add(["again"], ids=["a"])
    with pytest.raises(ValueError, match="Duplicate"):
        index.add(["x", "y"], ids=["z", "z"])
    with pytest.raises(ValueError, match="ids"):
        index.add(["x", "y"], ids=["only-one"])
    with pytest.raises(ValueError, match="metadata"):
        index.add(["x"], metadata=[{}, {}])
    with pytest.raises(ValueError, match="empty"):
        index.add(["fine", " "])
    assert len(index) == 3  # failed adds change nothing
    index.add(["default ids continue from the count"])
    assert index.ids[-1] == 3


def test_empty_index_says_so():
    with pytest.raises(ValueError, match="empty"):
        SemanticIndex(WordEmbedder()).search("hello")


def test_save_load_round_trip(paraphrase_index, embedder, tmp_path):
    path = paraphrase_index.save(tmp_path / "idx")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["model"] == "all-MiniLM-L6-v2"
    assert manifest["dim"] == 384 and manifest["count"] == len(PARAPHRASES)
    loaded = SemanticIndex.load(path, embedder)
    np.testing.assert_array_equal(loaded.vectors, paraphrase_index.vectors)
    assert loaded.ids == paraphrase_index.ids and loaded.metadata == paraphrase_index.metadata
    q = "loud people next door keep me awake at night"
    assert loaded.search(q, k=3) == paraphrase_index.search(q, k=3)
    # saving again replaces the folder atomically and leaves no temporary folders behind
    loaded.add(["one more"], ids=["extra"])
    loaded.save(path)
    assert len(SemanticIndex.load(path, embedder)) == len(PARAPHRASES) + 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_damaged_index_is_detected(tmp_path):
    index = SemanticIndex(WordEmbedder())
    index.add(["alpha", "beta"])
    path = index.save(tmp_path / "idx")
    vectors = np.load(path / "vectors.npy")
    vectors[0, 0] += 0.5
    np.save(path / "vectors.npy", vectors)
    with pytest.raises(ValueError, match="damaged"):
        SemanticIndex.load(path, WordEmbedder())
    with pytest.raises(FileNotFoundError, match="manifest"):
        SemanticIndex.load(tmp_path / "nothing-here", WordEmbedder())


def test_model_mismatch_on_load_and_query(tmp_path, embedder):
    index = SemanticIndex(WordEmbedder("model-A"))
    index.add(["alpha", "beta"])
    path = index.save(tmp_path / "idx")
    with pytest.raises(ModelMismatchError, match="model-A"):
        SemanticIndex.load(path, WordEmbedder("model-B"))
    with pytest.raises(ModelMismatchError, match="all-MiniLM-L6-v2"):
        SemanticIndex.load(path, embedder)
    assert len(SemanticIndex.load(path, WordEmbedder("model-A"))) == 2
    # querying with a swapped-in model fails too, instead of returning garbage scores
    index.embedder = WordEmbedder("model-B")
    with pytest.raises(ModelMismatchError, match="rebuild"):
        index.search("alpha")
    with pytest.raises(ModelMismatchError):
        index.add(["gamma"])


def test_manifest_naming_another_model(tmp_path, embedder):
    index = SemanticIndex(embedder)
    index.add(["a saved sentence"])
    path = index.save(tmp_path / "idx")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["model"] = "sentence-transformers/all-mpnet-base-v2"
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelMismatchError, match="all-mpnet-base-v2"):
        SemanticIndex.load(path, embedder)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"format": 99}', "format 99"),
        ('{"format": 1, "model": "m"}', "lacks"),
    ],
)
def test_bad_manifest_says_rebuild(tmp_path, content, message):
    (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(ValueError, match=message):
        read_manifest(tmp_path)
