"""Shared test fixtures: each model is loaded once per test session.

The offline environment every run shares (notebooks included) is set in the repository's
top-level ``conftest.py``.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def cl100k():
    """GPT-4's tokenizer (tiktoken cl100k_base, offline copy)."""
    from llmlab.runtime.models import load_tokenizer

    return load_tokenizer("cl100k_base")


@pytest.fixture(scope="session")
def embedder():
    """The bundled all-MiniLM-L6-v2 SentenceTransformer."""
    from llmlab.runtime.models import load_embedder

    return load_embedder()


@pytest.fixture(scope="session")
def lm():
    """The bundled SmolLM2-135M-Instruct (float32, eval mode, eager attention), from the cache."""
    from llmlab.runtime.models import load_lm

    return load_lm()
