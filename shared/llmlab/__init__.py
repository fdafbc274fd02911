"""LLM Lab's helper package: small, readable, tested modules that the notebooks import.

The folder tree is the architecture, one subpackage per layer, each importing only from the
layers below it (``tests/test_architecture.py`` checks this)::

    cli            the llmlab command
    views          pictures, widgets and pages of everything below
    serve          an OpenAI-compatible HTTP endpoint
    research       the research agent
    agents         the loop, its patterns, memory
    tool_use       tools as data, their text protocol, constrained tool calls
    rag            answers from retrieved passages, with checked citations
    training       LoRA, supervised fine-tuning, reward models, DPO
    chat           one chat interface: the bundled model or an OpenAI-compatible server
    internals      attention and the transformer rebuilt from the weights
    evaluation     metrics and confidence intervals
    decoding       the chat template, sampling, the generation loop, the KV cache
    search         embeddings, indexes, retrievers, chunking
    data           the bundled data sets, files read as text
    tokenization   text -> token ids
    runtime        load and run the models on this machine

Every model load goes through ``llmlab.runtime.models``; the three loaders are also here, so a
notebook starts with ``import llmlab; lm = llmlab.load_lm()``. Importing ``llmlab`` is cheap:
torch and transformers load on first use.
"""

from llmlab.runtime.models import (
    LM,
    ModelNotAvailableError,
    load_embedder,
    load_lm,
    load_tokenizer,
)

__all__ = ["LM", "ModelNotAvailableError", "load_embedder", "load_lm", "load_tokenizer"]
__version__ = "0.1.0"
