"""Tests for llmlab.search.embeddings: checked against SentenceTransformer.encode itself."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from llmlab.search.embeddings import (
    PROGRESS_MIN_TEXTS,
    check_texts,
    cosine_similarity,
    default_embedder,
    embed,
    embed_steps,
    mean_pool,
    normalize,
    text_read,
    token_count,
)

TEXTS = [
    "A man is playing a guitar.",
    "The new movie is awesome!",
    "Embeddings turn text into vectors.",
    "dog",
    "Der Hund bellt.",  # not English: still embeds, just less well
    "x" * 3,
]


class RecordingEmbedder:
    """A stand-in model that records how ``encode`` was called and returns unnormalised vectors."""

    llmlab_name = "recording-fake"

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def encode(self, texts, **kwargs):
        self.calls.append(kwargs)
        return np.array([[len(t), 1.0, 2.0] for t in texts], dtype=np.float64)  # (n, 3)


def test_embed_matches_sentence_transformers(embedder):
    ours = embed(TEXTS, model=embedder, batch_size=4)
    ref = embedder.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.dtype == np.float32
    assert ours.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)


def test_batch_size_does_not_change_vectors(embedder):
    np.testing.assert_allclose(
        embed(TEXTS, model=embedder, batch_size=1),
        embed(TEXTS, model=embedder, batch_size=64),
        atol=1e-5,
    )


def test_default_model_is_loaded_once():
    assert default_embedder() is default_embedder()
    assert embed("a dog").shape == (1, 384)  # a single string is one text, not a list of letters


def test_meaning_is_closer_than_surface(embedder):
    dog, puppy, canine, car = embed(["dog", "puppy", "canine", "car"], model=embedder)
    assert cosine_similarity(dog, puppy) > cosine_similarity(dog, car) + 0.2
    assert cosine_similarity(dog, canine) > cosine_similarity(dog, car) + 0.2


def test_progress_bar_on_long_inputs_only():
    fake = RecordingEmbedder()
    out = embed(["hi"] * 3, model=fake)
    embed(["hi"] * PROGRESS_MIN_TEXTS, model=fake)
    embed(["hi"] * 3, model=fake, show_progress=True)
    assert [c["show_progress_bar"] for c in fake.calls] == [False, True, True]
    assert all(c["normalize_embeddings"] for c in fake.calls)
    # embed normalises even when a model does not
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    assert out.dtype == np.float32


@pytest.mark.parametrize(
    ("texts", "error", "message"),
    [
        ([], ValueError, "at least one text"),
        ([""], ValueError, "empty"),
        (["ok", "   \n"], ValueError, r"texts\[1\]"),
        (["ok", 3], TypeError, "not a string"),
        (None, TypeError, "list of strings"),
    ],
)
def test_bad_texts(texts, error, message):
    with pytest.raises(error, match=message):
        embed(texts, model=RecordingEmbedder())


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        embed(["a"], batch_size=batch_size, model=RecordingEmbedder())


def test_cosine_similarity_by_hand():
    a, b = np.array([1.0, 0.0]), np.array([1.0, 1.0])
    assert cosine_similarity(a, b) == pytest.approx(1 / np.sqrt(2), abs=1e-6)
    assert cosine_similarity(a, -a) == pytest.approx(-1.0)
    assert cosine_similarity([3, 4], [4, -3]) == pytest.approx(0.0, abs=1e-7)
    m = cosine_similarity(np.eye(3), np.array([[1, 1, 0], [0, 0, 2]]))
    assert m.shape == (3, 2)
    np.testing.assert_allclose(m[:, 1], [0, 0, 1])
    assert cosine_similarity(a, np.stack([a, b])).shape == (2,)
    with pytest.raises(ValueError, match="same length"):
        cosine_similarity([1, 0], [1, 0, 0])
    with pytest.raises(ValueError, match="zero vector"):
        cosine_similarity([0, 0], [1, 0])


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float32, (4, 8), elements=st.floats(-10, 10, width=32)),
    arrays(np.float32, (3, 8), elements=st.floats(-10, 10, width=32)),
)
def test_cosine_properties(a, b):
    if (np.linalg.norm(a, axis=1) < 1e-3).any() or (np.linalg.norm(b, axis=1) < 1e-3).any():
        return  # (near-)zero vectors have no direction
    ab, ba = cosine_similarity(a, b), cosine_similarity(b, a)
    np.testing.assert_allclose(ab, ba.T, atol=1e-5)  # symmetric
    assert (np.abs(ab) <= 1.0).all()  # bounded
    np.testing.assert_allclose(np.diag(cosine_similarity(a, a)), 1.0, atol=1e-5)  # self = 1
    np.testing.assert_allclose(cosine_similarity(a * 7.5, b), ab, atol=1e-5)  # length is ignored


def test_normalize_textbook():
    np.testing.assert_allclose(normalize([[3.0, 4.0]]), [[0.6, 0.8]])


def test_mean_pool_ignores_padding():
    x = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])  # (1, 3, 2): last token is padding
    np.testing.assert_allclose(mean_pool(x, np.array([[1, 1, 0]])), [[2.0, 3.0]])
    np.testing.assert_allclose(mean_pool(x[0, :2], np.ones(2)), [2.0, 3.0])


def test_embed_steps_reproduce_encode(embedder):
    text = "Unbelievably, the tokenizer splits rare words into pieces."
    steps = embed_steps(text, model=embedder)
    assert steps.tokens[0] == "[CLS]" and steps.tokens[-1] == "[SEP]"
    assert any(t.startswith("##") for t in steps.tokens)  # WordPiece continuation pieces
    assert steps.token_vectors.shape == (len(steps.tokens), 384)
    np.testing.assert_allclose(steps.pooled, steps.token_vectors.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(steps.embedding, embed(text, model=embedder)[0], atol=1e-5)
    assert not steps.truncated


def test_long_text_is_truncated_at_256_tokens(embedder):
    words = [f"word{i}" for i in range(400)]
    head = " ".join(words[:150])
    long_a = head + " " + " ".join(words[150:]) + " the ending talks about volcanoes"
    long_b = head + " " + " ".join(words[150:]) + " the ending talks about pancakes"
    steps = embed_steps(long_a, model=embedder)
    assert steps.truncated and len(steps.tokens) == embedder.max_seq_length == 256
    a, b = embed([long_a, long_b], model=embedder)
    assert cosine_similarity(a, b) > 0.9999  # the different endings were never read


def test_check_texts():
    assert check_texts("hi") == ["hi"]
    assert check_texts(np.array(["a", "b"])) == ["a", "b"]


def test_text_read_is_what_the_model_embeds(embedder):
    short = "A man is playing a guitar."
    assert token_count(short, embedder) == len(embedder.tokenizer(short)["input_ids"]) == 9
    assert text_read(short, embedder) == short
    long = " ".join(f"sentence {i} is about something else entirely." for i in range(100))
    read = text_read(long, embedder)
    assert token_count(long, embedder) > embedder.max_seq_length
    assert long.startswith(read) and 500 < len(read) < len(long) // 2
    assert token_count(read, embedder) <= embedder.max_seq_length
    # the embedding of the whole text is the embedding of the part read: the rest is ignored
    whole, part, more = embed([long, read, long[: len(read) - 30]], model=embedder)
    assert cosine_similarity(whole, part) > 0.99999
    assert cosine_similarity(whole, more) < 0.9999  # dropping 30 more characters changes it
