"""What a terminal command keeps off the screen: the libraries' progress bars and warnings.

``quiet_libraries()`` is called by a subcommand before it loads a model, so stdout holds the
answer and stderr holds only llmlab's own lines: no "Loading weights" bars from transformers, no
FutureWarnings from the libraries, no tokenizers fork warning.

Leaves out: llmlab's own progress bars (a command shows them on purpose, e.g. ``llmlab tune``)
and notebooks (there, a warning is something the learner may want to see).
"""

from __future__ import annotations

import os
import warnings


def quiet_libraries() -> None:
    """Silence transformers' progress bars and logging below errors, and FutureWarnings."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)
