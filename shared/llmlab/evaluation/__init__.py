"""Evaluation: numbers that say whether a system is good, and how sure we are.

- ``metrics``: retrieval metrics (recall@k, MRR, nDCG), span overlap, answer matching
  (exact match, token F1), confidence intervals (bootstrap, Wilson, paired bootstrap) and
  how many test items a comparison needs.
- ``loglikelihood``: log P(option | prompt) as lm-evaluation-harness computes it, each prompt
  read once (``choice_logprobs``, ``batch_choice_logprobs``).
- ``multiple_choice``: items, prompts (cloze, lettered, few-shot) and the four scorers
  harnesses use (``acc``, ``acc_norm``, letter, generate-and-parse).
- ``baselines``: random, always-one-position, longest option, BM25, MiniLM similarity.
- ``benchmarks``: the two multiple-choice sets built from the project's data (wiki-mc,
  faq-mc), frozen as files in ``phase-6-deep-dives/data/``.
- ``contamination``: n-gram overlap between test items and a training corpus.

Builds on the layers below; every app above measures itself with it. A scorer that needs a
model's generations takes them as texts (any model, local or behind an API).
"""
