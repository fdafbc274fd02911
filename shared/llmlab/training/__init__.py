"""Training: adapt the model on a laptop CPU (Phase 6).

- ``probe``: the cheapest adaptation, frozen features + a linear probe.
- ``lora``: LoRA by hand (add, remove, switch off, merge), saved and loaded in peft's format.
- ``sft``: supervised fine-tuning: chats -> token ids + loss mask, the training loop (progress
  bar, time budget).
- ``adapter_cache``: trained adapters kept on disk by a fingerprint of what decided them, so a
  lesson run again loads instead of training (SFT, DPO, the contamination experiment).
- ``chat_data``: training chats from a JSONL file in OpenAI's fine-tuning format (``llmlab tune``).
- ``preferences``, ``reward``, ``best_of_n``, ``dpo``: preference data, reward models,
  best-of-n sampling and DPO (rlhf.ipynb); ``frozen_blocks``: train only the top blocks, the
  frozen ones below read once.

Builds on ``runtime``, ``decoding`` and ``chat``.
"""
