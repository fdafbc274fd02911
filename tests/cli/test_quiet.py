"""llmlab.cli.quiet: what a terminal command keeps off the screen."""

import os
import warnings

from transformers.utils import logging as hf_logging

from llmlab.cli.quiet import quiet_libraries


def test_quiet_libraries_turns_off_bars_logging_and_future_warnings(monkeypatch):
    monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
    before = hf_logging.get_verbosity()
    hf_logging.enable_progress_bar()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet_libraries()
            warnings.warn("deprecated", FutureWarning, stacklevel=2)
        assert not hf_logging.is_progress_bar_enabled()
        assert hf_logging.get_verbosity() == hf_logging.ERROR
        assert caught == []
        assert os.environ["TOKENIZERS_PARALLELISM"] == "false"
    finally:
        hf_logging.set_verbosity(before)
        hf_logging.enable_progress_bar()
