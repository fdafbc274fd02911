"""The cheapest adaptation: frozen features + a linear probe (no weight of the model changes).

Run the frozen model once over each text, keep one vector per text (the mean of a layer's
hidden states over the text's tokens), and fit a logistic regression on those vectors. The
model is read once, not trained: seconds instead of minutes, and nothing to forget.

Covers: ``lm_features(lm, texts, layer)`` (batched, mean-pooled hidden states of the language
model) and ``fit_probe(features, labels)`` (standardised features -> scikit-learn's logistic
regression). Sentence embeddings (MiniLM) are the other feature source: ``llmlab.search``.

Leaves out: fine-tuning the features (that is LoRA: ``llmlab.training.sft``), probes on single
tokens or attention heads (``llmlab.internals.heads``), non-linear heads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from llmlab.runtime.models import LM


@torch.no_grad()
def lm_features(
    lm: LM, texts: Sequence[str], layer: int = -1, batch_size: int = 16, max_tokens: int = 64
) -> np.ndarray:
    """One vector per text: the mean of layer ``layer``'s hidden states over its tokens, (N, C).

    ``layer`` indexes ``hidden_states`` (0 = the embeddings, -1 = the last block, after the
    final norm). Texts are cut to ``max_tokens`` tokens and batched by length.
    """
    if isinstance(texts, str) or not texts:
        raise ValueError("texts must be a non-empty list of strings.")
    ids = [lm.tokenizer(t, add_special_tokens=False)["input_ids"][:max_tokens] for t in texts]
    if any(not row for row in ids):
        raise ValueError("Every text needs at least one token: drop the empty ones.")
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = np.zeros((len(ids), lm.model.config.hidden_size), dtype=np.float32)  # (N, C)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = max(len(ids[i]) for i in chunk)
        feed = torch.tensor([ids[i] + [0] * (width - len(ids[i])) for i in chunk])  # (b, T)
        mask = torch.tensor([[1] * len(ids[i]) + [0] * (width - len(ids[i])) for i in chunk])
        hidden = lm.model.get_decoder()(  # the blocks only: no vocabulary projection
            input_ids=feed, attention_mask=mask, output_hidden_states=True
        ).hidden_states[layer]  # (b, T, C)
        m = mask[..., None].to(hidden.dtype)  # (b, T, 1)
        out[chunk] = ((hidden * m).sum(1) / m.sum(1)).float().numpy()  # (b, C)
    return out


def fit_probe(features: np.ndarray, labels: Sequence[Any], c: float = 1.0, seed: int = 0) -> Any:
    """A logistic-regression probe on standardised features (a scikit-learn pipeline):
    ``fit_probe(x_train, y_train).predict(x_test)``. ``c``: inverse regularisation strength."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(features)
    if x.ndim != 2 or len(x) != len(labels):
        raise ValueError(f"features must be (N, C) with N = len(labels), got {x.shape}.")
    probe = make_pipeline(
        StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=seed)
    )
    return probe.fit(x, list(labels))
