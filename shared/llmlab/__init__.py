"""LLM Lab's helper package: small, readable, tested modules that the notebooks import.

One module per topic (see the README's curriculum map). Every model load goes through
``llmlab.models`` so there is one place to change a model and one clear error when something
is missing. Importing ``llmlab`` is cheap: heavy libraries (torch, transformers) load on first use.
"""

from llmlab.models import (
    LM,
    ModelNotAvailableError,
    load_embedder,
    load_lm,
    load_tokenizer,
)

__all__ = ["LM", "ModelNotAvailableError", "load_embedder", "load_lm", "load_tokenizer"]
__version__ = "0.1.0"
