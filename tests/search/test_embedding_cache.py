"""llmlab.search.embedding_cache: same vectors as embed(), written once, stale or damaged files never used."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from llmlab.search.embedding_cache import CacheWarning, cache_path, embed_cached, fingerprint
from tests.doubles import HashEmbedder


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path))
    return tmp_path


def test_matches_embed_and_is_written_once(embedder, tmp_cache):
    from llmlab.search.embeddings import embed

    texts = ["A dog runs in the park.", "Stock markets fell sharply."]
    first = embed_cached(texts, model=embedder)
    assert np.allclose(first, embed(texts, model=embedder), atol=1e-6)
    path = cache_path(texts, embedder)
    assert path.parent == tmp_cache / "embeddings" and path.is_file()
    mtime = path.stat().st_mtime_ns
    again = embed_cached(texts, model=embedder)
    assert np.array_equal(first, again) and path.stat().st_mtime_ns == mtime


def test_second_call_does_not_embed():
    model = HashEmbedder()
    embed_cached(["one", "two", "three"], model=model)
    embed_cached(["one", "two", "three"], model=model)
    assert len(model.seen) == 3


def test_a_new_list_embeds_only_its_new_texts(embedder):
    from llmlab.search.embeddings import embed

    model = HashEmbedder()
    first = embed_cached(["one", "two", "three"], model=model)
    second = embed_cached(["three", "four", "two", "four"], model=model)  # a new list, a new file
    assert len(model.seen) == 3 + 1  # only "four" went through the model, and only once
    assert np.array_equal(second[[0, 2]], first[[2, 1]]) and np.array_equal(second[1], second[3])
    assert cache_path(["three", "four", "two", "four"], model).is_file()
    texts = ["A dog runs in the park.", "Stock markets fell sharply.", "A puppy plays outside."]
    embed_cached(texts[:2], model=embedder)
    mixed = embed_cached(texts, model=embedder)  # two from memory, one from the real model
    assert np.allclose(mixed, embed(texts, model=embedder), atol=1e-5)


def test_fingerprint_changes_with_text_model_and_split():
    assert fingerprint(["a"], "m") != fingerprint(["a"], "n")
    assert fingerprint(["a"], "m") != fingerprint(["b"], "m")
    assert fingerprint(["ab", "c"], "m") != fingerprint(["a", "bc"], "m")
    a, b = HashEmbedder("model-a"), HashEmbedder("model-b")
    assert cache_path(["x"], a) != cache_path(["x"], b)


def test_damaged_file_is_reported_and_recomputed():
    model = HashEmbedder()
    good = embed_cached(["alpha", "beta"], model=model)
    path = cache_path(["alpha", "beta"], model)
    path.write_bytes(path.read_bytes()[:40])  # truncate: a crash mid-copy, a bad disk
    with pytest.warns(CacheWarning, match="damaged"):
        again = embed_cached(["alpha", "beta"], model=model)
    assert np.allclose(again, good) and len(model.seen) == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rewritten file is good again: no warning
        embed_cached(["alpha", "beta"], model=model)


def test_wrong_shape_is_damaged():
    model = HashEmbedder()
    embed_cached(["alpha", "beta"], model=model)
    np.save(cache_path(["alpha", "beta"], model), np.ones((3, model.dim), dtype=np.float32))
    with pytest.warns(CacheWarning, match="shape"):
        out = embed_cached(["alpha", "beta"], model=model)
    assert out.shape == (2, model.dim)


def test_no_temp_files_left(tmp_cache):
    embed_cached(["alpha"], model=HashEmbedder())
    assert [p.suffix for p in (tmp_cache / "embeddings").iterdir()] == [".npy"]


def test_bad_input():
    with pytest.raises(ValueError, match="empty"):
        embed_cached([], model=HashEmbedder())
    with pytest.raises(ValueError, match="whitespace"):
        embed_cached(["ok", "  "], model=HashEmbedder())
