"""Evaluation: numbers that say whether a system is good, and how sure we are.

- ``metrics``: retrieval metrics (recall@k, MRR, nDCG), span overlap, answer matching
  (exact match, token F1), and confidence intervals (bootstrap, Wilson).

Builds on the layers below; every app above measures itself with it.
"""
