"""Runtime: choose, load and run the models on this machine (the bottom layer).

- ``models``: the one place that decides which tokenizer, embedder and language model you get
  (bundled and offline by default; a hub id or a folder when you are online).
- ``model_cache``: the dequantized language model cached on disk, checked by checksum.
- ``architecture``: a model's shape (layers, heads, head size, RoPE base, context length).
- ``threads``: how many CPU threads a forward pass gets.
- ``diagnostics``: the checks behind ``llmlab doctor``.
- ``quantization``: the LM re-quantised (bfloat16, int8) and its weights' bytes counted.

Imports nothing else from llmlab; every other layer builds on it.
"""
