"""Embeddings: turning a text into one vector, so that "close in meaning" becomes "close in space".

Covers:
- ``embed(texts)``: an ``(n, dim)`` float32 array of unit-length vectors from the bundled
  all-MiniLM-L6-v2 (dim 384), or from any model with a sentence-transformers style ``encode``.
- ``cosine_similarity(a, b)``: how alike two vectors (or two stacks of vectors) point, in [-1, 1].
- ``embed_steps(text)`` and ``mean_pool(...)``: what happens inside one ``encode`` call, spelled
  out (WordPiece tokens -> one vector per token -> mean pooling -> normalise), so a notebook can
  rebuild a sentence vector by hand and check it against the library.

- ``token_count(text)`` and ``text_read(text)``: how many tokens a text is, and the part of it
  the model really reads: everything past ``max_seq_length`` (256 here) is silently cut.

Leaves out: training or fine-tuning embedders, approximate nearest-neighbour indexes (see
``llmlab.search.semantic_index`` for exact search), GPUs, and models that need a query/document prompt.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmlab.runtime.threads import use_threads

# Inputs at least this long get a progress bar by default (the bundled model embeds roughly
# 100-300 short texts a second on a laptop CPU, so shorter inputs finish before a bar helps).
PROGRESS_MIN_TEXTS = 1000


@functools.cache
def default_embedder() -> Any:
    """The bundled all-MiniLM-L6-v2, loaded once per process through ``llmlab.load_embedder``."""
    from llmlab.runtime.models import load_embedder

    return load_embedder()


def check_texts(texts: str | Sequence[str]) -> list[str]:
    """The texts as a list of non-empty strings, or a clear error: ``check_texts("hi") -> ['hi']``."""
    if isinstance(texts, str):
        texts = [texts]
    if isinstance(texts, np.ndarray):
        texts = texts.tolist()
    if not isinstance(texts, Sequence):
        raise TypeError(f"texts must be a string or a list of strings, got {type(texts).__name__}.")
    texts = list(texts)
    if not texts:
        raise ValueError("embed() needs at least one text, got an empty list.")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] is a {type(t).__name__}, not a string: {t!r}.")
        if not t.strip():
            raise ValueError(
                f"texts[{i}] is empty or only whitespace ({t!r}); an empty text has no meaning "
                "to embed. Drop it, or replace it with some text."
            )
    return texts


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Scale each row to length 1: ``normalize([[3, 4]]) -> [[0.6, 0.8]]``."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)  # (n, 1)
    if np.any(norms == 0):
        raise ValueError(
            "Cannot normalise a zero vector: it points nowhere, so it has no direction."
        )
    return v / norms


def embed(
    texts: str | Sequence[str],
    batch_size: int = 32,
    model: Any = None,
    show_progress: bool | None = None,
) -> np.ndarray:
    """Embed texts as an ``(n, dim)`` float32 array of unit vectors.

    ``embed(["a dog", "a puppy"]).shape -> (2, 384)``. A single string gives shape ``(1, dim)``.
    ``model`` defaults to the bundled all-MiniLM-L6-v2 (loaded once). ``show_progress=None``
    shows a bar for inputs of ``PROGRESS_MIN_TEXTS`` texts or more.
    """
    texts = check_texts(texts)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(
            f"batch_size must be a positive integer (e.g. 32 or 64), got {batch_size!r}."
        )
    model = default_embedder() if model is None else model
    if show_progress is None:
        show_progress = len(texts) >= PROGRESS_MIN_TEXTS
    with use_threads(
        len(texts)
    ):  # the cores no other program is keeping busy (llmlab.runtime.threads)
        vectors = model.encode(
            texts,
            batch_size=batch_size,
            show_progress_bar=bool(show_progress),
            normalize_embeddings=True,
            convert_to_numpy=True,
        )  # (n, dim)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(texts):
        raise ValueError(
            f"The model returned shape {vectors.shape} for {len(texts)} texts; expected (n, dim)."
        )
    return normalize(vectors)  # a no-op for models that already normalise; a guarantee for others


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float | np.ndarray:
    """Cosine of the angle between vectors: 1 same direction, 0 unrelated, -1 opposite.

    Two vectors -> a float; ``(n, d)`` and ``(m, d)`` -> an ``(n, m)`` matrix;
    a vector and ``(m, d)`` -> ``(m,)``. ``cosine_similarity([1, 0], [1, 1]) -> 0.7071``.
    """
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if a.ndim not in (1, 2) or b.ndim not in (1, 2):
        raise ValueError(f"Expected 1-D or 2-D arrays, got shapes {a.shape} and {b.shape}.")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"Vectors must have the same length to be compared, got {a.shape[-1]} and "
            f"{b.shape[-1]} (were they made by different models?)."
        )
    sims = normalize(a) @ normalize(b).T  # (n, m), (m,), (n,) or a scalar
    sims = np.clip(sims, -1.0, 1.0)  # rounding can give 1.0000001
    return float(sims) if sims.ndim == 0 else sims


def token_count(text: str, model: Any = None) -> int:
    """Tokens in ``text`` as the embedder counts them, ``[CLS]``/``[SEP]`` included, before truncation.

    ``token_count("a dog") -> 4``. Compare with ``model.max_seq_length`` (256 for the bundled
    model): ``encode`` silently ignores every token past it.
    """
    (text,) = check_texts([text])
    model = default_embedder() if model is None else model
    return len(model.tokenizer(text, verbose=False)["input_ids"])


def text_read(text: str, model: Any = None) -> str:
    """The start of ``text`` that the model reads: all of it, unless it is over ``max_seq_length``.

    ``text_read("a dog") -> 'a dog'``; for a 2,000-word text, about its first 200 words.
    """
    (text,) = check_texts([text])
    model = default_embedder() if model is None else model
    enc = model.tokenizer(
        text, truncation=True, max_length=model.max_seq_length, return_offsets_mapping=True
    )
    ends = [end for _, end in enc["offset_mapping"] if end > 0]  # special tokens have (0, 0)
    return text[: max(ends)] if ends and len(enc["input_ids"]) >= model.max_seq_length else text


# --- inside encode(): the steps, one at a time ---------------------------------------------------


def mean_pool(token_vectors: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Average the vectors of the real tokens (mask 1), ignoring padding (mask 0).

    ``token_vectors`` is ``(T, dim)`` or ``(B, T, dim)``; ``attention_mask`` is ``(T,)`` or ``(B, T)``.
    """
    x = np.asarray(token_vectors, dtype=np.float32)
    m = np.asarray(attention_mask, dtype=np.float32)[..., None]  # (B, T, 1): 1 = real token
    summed = (x * m).sum(axis=-2)  # (B, dim): padding contributes zeros
    counts = np.clip(m.sum(axis=-2), 1e-9, None)  # (B, 1): number of real tokens
    return summed / counts  # (B, dim)


@dataclass
class EmbedSteps:
    """Every intermediate of embedding one text with a BERT-style sentence-transformers model."""

    text: str
    tokens: list[str]  # WordPiece pieces, with [CLS] ... [SEP]; '##' marks a word continuation
    input_ids: np.ndarray  # (T,) vocabulary ids
    token_vectors: np.ndarray  # (T, dim) one contextual vector per token
    pooled: np.ndarray  # (dim,) mean of the token vectors
    embedding: np.ndarray  # (dim,) pooled, scaled to length 1 (what ``embed`` returns)
    n_tokens: int  # tokens in the whole text, before truncation
    truncated: bool  # True if the text was longer than the model's max_seq_length (256): the rest was ignored


def embed_steps(text: str, model: Any = None) -> EmbedSteps:
    """Embed one text step by step, keeping every intermediate (see ``EmbedSteps``)."""
    import torch

    (text,) = check_texts([text])
    model = default_embedder() if model is None else model
    tokenizer = model.tokenizer
    transformer = model[0].auto_model  # the BERT network inside the SentenceTransformer
    max_len = model.max_seq_length  # 256 for all-MiniLM-L6-v2
    n_tokens = token_count(text, model)  # before truncation
    enc = tokenizer(text, truncation=True, max_length=max_len, return_tensors="pt")
    with torch.no_grad():
        out = transformer(**enc).last_hidden_state[0]  # (T, dim)
    token_vectors = out.numpy().astype(np.float32)
    mask = enc["attention_mask"][0].numpy()  # (T,) all ones for a single text
    pooled = mean_pool(token_vectors, mask)  # (dim,)
    ids = enc["input_ids"][0].numpy()
    return EmbedSteps(
        text=text,
        tokens=tokenizer.convert_ids_to_tokens(ids.tolist()),
        input_ids=ids,
        token_vectors=token_vectors,
        pooled=pooled,
        embedding=normalize(pooled),
        n_tokens=n_tokens,
        truncated=n_tokens > max_len,
    )
