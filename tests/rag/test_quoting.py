"""Tests for llmlab.rag.quoting: the model can only copy one of the options."""

from __future__ import annotations

import pytest

from llmlab.rag.quoting import quote, quote_prompt


def test_one_option_needs_no_model():
    assert quote(None, "Anything?", ["Only this."]).index == 0


def test_the_model_copies_an_option_and_stops_once_it_is_unique(lm):
    options = [
        "To copy a file, call shutil.copy(src, dst).",
        "To delete a file, call os.remove(path).",
        "Strings are immutable.",
    ]
    choice = quote(lm, "How do I delete a file?", options)
    assert 0 <= choice.index < 3 and choice.logprob <= 0
    # "To" starts two options: at least two steps decide; "Strings" would decide in one
    assert choice.steps >= (2 if choice.index < 2 else 1)
    assert choice.prompt_tokens == len(quote_prompt(lm, "How do I delete a file?", options))
    with pytest.raises(ValueError, match="at least one non-empty option"):
        quote(lm, "q", [])
