"""Supervised fine-tuning (SFT) with LoRA on a CPU: chats -> token ids + loss mask -> a trained adapter.

SFT is next-token prediction on chats written the way you want the model to answer. Three
details decide whether it works, and each is a switch here so a lesson can measure it:

- **The chat template**: train on exactly the text the model will read when it is used
  (``<|im_start|>user ... <|im_end|>`` for SmolLM2), or it learns a format it never sees again.
- **The end-of-turn token** (``<|im_end|>``) kept in the answer, so the model learns to stop
  (``end_of_turn=False`` drops it from the last answer: the classic "never stops" bug).
- **Which tokens the loss counts** (``mask_prompt=True``: the assistant's answers only).

Covers:
- ``encode_chat``: one chat -> ``Tokenized(ids, counted)``; ``make_batches``: sorted by length,
  padded to the longest row; ``batch_loss`` (the output head runs only where the loss counts).
- ``train``: AdamW on the LoRA parameters with a tqdm bar (loss, tokens/s, ETA) and an
  optional time budget; ``evaluate_loss``.
- ``finetune``: all of it for a list of chats, cached by fingerprint
  (``llmlab.training.adapter_cache``): re-running a lesson loads the adapter instead of training
  it again.

Leaves out: full fine-tuning (``train`` works for any parameters, ``finetune`` uses LoRA),
gradient accumulation, learning-rate schedules (constant rate, gradients clipped at 1.0),
packing several chats in one row, and multi-process training.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.nn import functional as F

from llmlab.decoding.chat_template import Message, check_message_list
from llmlab.decoding.kv_cache import cache_from_output, cache_kwarg, cache_tensors, make_cache
from llmlab.training.adapter_cache import (
    TRAINING_FORMAT,
    base_model_name,
    cached_adapter,
    fingerprint,
    model_identity,
)
from llmlab.training.lora import (
    ALL_LINEAR,
    add_lora,
    lora_layers,
    lora_parameters,
    remove_lora,
    save_adapter,
)

if TYPE_CHECKING:
    from llmlab.runtime.models import LM

REPORT_FILE = "training_report.json"  # written beside the adapter by ``finetune``


# --- chats -> token ids and a loss mask -----------------------------------------------------


@dataclass(frozen=True)
class Tokenized:
    """One training chat as token ids; ``counted[i]`` says whether the loss predicts ``ids[i]``."""

    ids: list[int]
    counted: list[bool]

    def __len__(self) -> int:
        return len(self.ids)


def _template(tok: Any, messages: list[Message], generation_prompt: bool = False) -> str:
    if not messages:
        return ""
    return tok.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=generation_prompt
    )


def encode_chat(
    lm: LM, messages: Sequence[Message], *, mask_prompt: bool = True, end_of_turn: bool = True
) -> Tokenized:
    """Token ids of a chat in the model's template, and which of them the loss counts.

    With ``mask_prompt`` the loss counts each assistant answer and the end-of-turn token after
    it (not an answer marked ``"weight": 0``, as in OpenAI's format); otherwise every token (the system prompt and questions too). ``end_of_turn=False`` drops
    the end-of-turn token after the last answer. Each piece is tokenized on its own, as the
    model meets it when it answers (the prompt is read, then the answer is written token by
    token). For SmolLM2: ``[user "hi", assistant "Hello."]`` -> 30 ids, the last 3 counted
    ("Hello", ".", "<|im_end|>").
    """
    tok, msgs = lm.tokenizer, check_message_list(messages)
    if not any(m["role"] == "assistant" for m in msgs):
        raise ValueError("A training chat needs at least one assistant message (the answer).")
    last_answer = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
    msgs = msgs[: last_answer + 1]  # turns after the last answer teach nothing
    pieces: list[tuple[str, bool]] = []  # (text, counted)
    before = ""
    for i, m in enumerate(msgs):
        text = _template(tok, msgs[: i + 1])
        if not text.startswith(before):
            raise ValueError("This chat template rewrites earlier turns: it cannot be split.")
        piece = text[len(before) :]
        before = text
        if m["role"] != "assistant":
            pieces.append((piece, not mask_prompt))
            continue
        head = _template(tok, msgs[:i], generation_prompt=True)[len(_template(tok, msgs[:i])) :]
        if not piece.startswith(head + m["content"]):
            raise ValueError("This chat template changes the answer's text: it cannot be split.")
        rest = piece[len(head) + len(m["content"]) :]  # "<|im_end|>\n"
        eot = rest.rstrip()  # "<|im_end|>"
        learn = m.get("weight", 1) != 0  # OpenAI's format: weight 0 = context, not learned
        pieces.append((head, not mask_prompt))
        if i == last_answer and not end_of_turn:
            pieces.append((m["content"], learn))  # the text just ends: nothing says "stop"
            continue
        pieces.append((m["content"] + eot, learn or not mask_prompt))
        pieces.append((rest[len(eot) :], not mask_prompt))
    if not any(count for _, count in pieces):
        raise ValueError("Nothing to learn in this chat: every assistant message has weight 0.")
    ids, counted = [], []
    for text, count in pieces:
        if not text:
            continue
        part = tok(text, add_special_tokens=False)["input_ids"]
        ids += part
        counted += [count] * len(part)
    return Tokenized(ids=ids, counted=counted)


@dataclass
class Batch:
    """Rows padded on the right to the longest one: ids, attention mask, loss mask, (B, T) each.

    With ``prefix`` (P,) the rows are what follows a beginning they all share (e.g. a system
    prompt listing tools): it is read once per batch and its keys/values are reused by every
    row, as a prompt cache does, with gradients flowing through it; the loss never counts it.
    """

    ids: torch.Tensor  # (B, T) token ids, padding = 0
    attention: torch.Tensor  # (B, T) 1 for real tokens
    counted: torch.Tensor  # (B, T) bool: the loss predicts this token
    prefix: torch.Tensor | None = None  # (P,) token ids shared by every row, or None

    @property
    def tokens(self) -> int:
        """Tokens the model reads for this batch (the shared prefix once)."""
        return int(self.attention.sum()) + (0 if self.prefix is None else len(self.prefix))

    @property
    def counted_tokens(self) -> int:
        """Tokens the loss averages over (without a prefix, a row's first token has no context)."""
        counted = self.counted if self.prefix is not None else self.counted[:, 1:]
        return int(counted.sum())


def _shared_prefix(rows: Sequence[Tokenized]) -> int:
    """How many first tokens all rows share, none counted, each row keeping >= 1 own token."""
    n = 0
    limit = min(len(r) for r in rows) - 1
    first = rows[0]
    while n < limit and not first.counted[n] and all(r.ids[n] == first.ids[n] for r in rows):
        n += 1
    return n


def make_batches(
    examples: Sequence[Tokenized],
    batch_size: int = 8,
    *,
    seed: int = 0,
    shuffle: bool = True,
    share_prefix: bool = False,
    min_prefix: int = 16,
) -> list[Batch]:
    """Group examples of similar length (sorted by length, so rows carry little padding) into
    batches, in a shuffled order (``seed``): ``[Batch(ids=(B, T), ...), ...]``.

    ``share_prefix``: group examples that begin alike (by their first ``min_prefix`` tokens,
    then by length) and read the beginning a batch's rows share, if at least ``min_prefix``
    tokens, once per batch (``Batch.prefix``).
    """
    if not examples:
        raise ValueError("No training examples: give at least one chat with an answer.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if share_prefix:  # examples that begin alike together, then by length
        order = sorted(
            range(len(examples)),
            key=lambda i: (examples[i].ids[:min_prefix], len(examples[i]), i),
        )
    else:
        order = sorted(range(len(examples)), key=lambda i: (len(examples[i]), i))
    groups = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if shuffle:
        random.Random(seed).shuffle(groups)
    batches = []
    for group in groups:
        rows = [examples[i] for i in group]
        shared = _shared_prefix(rows) if share_prefix else 0
        shared = shared if shared >= min_prefix else 0
        width = max(len(r) for r in rows) - shared
        pads = [width - (len(r) - shared) for r in rows]
        batches.append(
            Batch(
                ids=torch.tensor(
                    [r.ids[shared:] + [0] * p for r, p in zip(rows, pads, strict=True)]
                ),
                attention=torch.tensor(
                    [[1] * (len(r) - shared) + [0] * p for r, p in zip(rows, pads, strict=True)]
                ),
                counted=torch.tensor(
                    [r.counted[shared:] + [False] * p for r, p in zip(rows, pads, strict=True)]
                ),
                prefix=torch.tensor(rows[0].ids[:shared]) if shared else None,
            )
        )
    return batches


def batch_loss(model: Any, batch: Batch) -> torch.Tensor:
    """Mean cross-entropy of the counted tokens, each predicted from the tokens before it.

    Same value as ``model(ids, labels=ids with -100 where not counted).loss``, but the output
    head (576 -> 49,152 for SmolLM2, a fifth of the model's work per token) runs only at the
    positions the loss counts, and a shared ``prefix`` is read once for the whole batch.
    """
    decoder = model.get_decoder()
    if batch.prefix is None:
        hidden = decoder(input_ids=batch.ids, attention_mask=batch.attention).last_hidden_state
        before = hidden[:, :-1]  # (B, T-1, C): position t predicts token t+1
        targets, keep = batch.ids[:, 1:], batch.counted[:, 1:]  # (B, T-1)
    else:
        b, p = batch.ids.shape[0], len(batch.prefix)
        pre = decoder(input_ids=batch.prefix[None], use_cache=True)  # the prefix, once
        kvs = [
            (k.expand(b, -1, -1, -1), v.expand(b, -1, -1, -1))
            for k, v in cache_tensors(cache_from_output(pre))
        ]  # per layer (B, kv_heads, P, head_dim), shared, not copied
        hidden = decoder(
            input_ids=batch.ids,
            attention_mask=torch.cat(
                [torch.ones(b, p, dtype=batch.attention.dtype), batch.attention], 1
            ),
            position_ids=(p + torch.arange(batch.ids.shape[1])).expand(b, -1),
            use_cache=True,
            **{cache_kwarg(decoder): make_cache(model, kvs)},
        ).last_hidden_state  # (B, T, C)
        last = pre.last_hidden_state[:, -1:].expand(b, 1, -1)  # (B, 1, C) predicts ids[:, 0]
        before = torch.cat([last, hidden[:, :-1]], dim=1)  # (B, T, C)
        targets, keep = batch.ids, batch.counted  # (B, T)
    if not keep.any():
        raise ValueError("This batch has no counted tokens: every answer is empty.")
    logits = model.get_output_embeddings()(before[keep])  # (N, V)
    return F.cross_entropy(logits.float(), targets[keep])


# --- the training loop ----------------------------------------------------------------------


@dataclass
class TrainReport:
    """What one training run did: steps, tokens read, time, and the loss of every step."""

    steps: int
    planned_steps: int
    tokens: int  # real tokens read (prompt and answer, no padding)
    seconds: float
    losses: list[float] = field(default_factory=list)
    stopped_by_budget: bool = False

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def train(
    model: Any,
    batches: Sequence[Batch],
    parameters: Iterable[torch.nn.Parameter] | None = None,
    *,
    epochs: int = 1,
    lr: float = 1e-3,
    seed: int = 0,
    time_budget: float | None = None,
    progress: bool = True,
    desc: str = "training",
) -> TrainReport:
    """AdamW over ``parameters`` (default: the LoRA parameters) for ``epochs`` passes.

    The bar shows the loss (mean of the last 10 steps), tokens/s and the ETA. With
    ``time_budget`` (seconds) it stops before a step that would overrun it, and says so.
    """
    from tqdm.auto import tqdm

    params = list(lora_parameters(model) if parameters is None else parameters)
    if not params:
        raise ValueError("Nothing to train: call add_lora(model) first, or pass parameters.")
    if epochs < 1 or lr <= 0:
        raise ValueError(f"epochs must be >= 1 and lr > 0, got epochs={epochs}, lr={lr}.")
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    planned = epochs * len(batches)
    report = TrainReport(steps=0, planned_steps=planned, tokens=0, seconds=0.0)
    rng = random.Random(seed)
    start = time.perf_counter()
    with tqdm(total=planned, desc=desc, unit="step", disable=not progress) as bar:
        for epoch in range(epochs):
            order = list(range(len(batches)))
            if epoch:
                rng.shuffle(order)  # the first epoch keeps the given order
            for i in order:
                elapsed = time.perf_counter() - start
                per_step = elapsed / report.steps if report.steps else 0.0
                if time_budget is not None and elapsed + per_step > time_budget:
                    report.stopped_by_budget = True
                    break
                loss = batch_loss(model, batches[i])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                report.steps += 1
                report.tokens += batches[i].tokens
                report.losses.append(loss.item())
                report.seconds = time.perf_counter() - start
                recent = report.losses[-10:]
                bar.set_postfix(
                    loss=f"{sum(recent) / len(recent):.3f}",
                    tok_s=f"{report.tokens_per_second:.0f}",
                )
                bar.update(1)
            if report.stopped_by_budget:
                bar.write(
                    f"Time budget of {time_budget:.0f} s reached: stopped after "
                    f"{report.steps} of {planned} steps."
                )
                break
    report.seconds = time.perf_counter() - start
    return report


@torch.no_grad()
def evaluate_loss(model: Any, batches: Sequence[Batch]) -> float:
    """Mean loss per counted token over ``batches`` (no training): the validation loss."""
    total, count = 0.0, 0
    for batch in batches:
        n = batch.counted_tokens
        total += float(batch_loss(model, batch)) * n
        count += n
    return total / count


# --- everything together --------------------------------------------------------------------


@dataclass(frozen=True)
class SFTSettings:
    """Every choice that changes what the adapter learns (all part of the cache key)."""

    r: int = 8  # LoRA rank: trainable numbers per layer = r * (in + out)
    alpha: float = 16  # LoRA scale alpha / r; alpha = 2r is a common default
    targets: tuple[str, ...] = ALL_LINEAR  # which linear layers get an adapter
    layers: tuple[int, ...] | None = None  # which blocks (None: all); the top ones are cheapest
    lr: float = 1e-3  # LoRA takes a higher rate than full fine-tuning (1e-5 .. 1e-4)
    epochs: int = 1
    batch_size: int = 8
    mask_prompt: bool = True  # loss on the answers only
    end_of_turn: bool = True  # keep <|im_end|> after the answer: the model learns to stop
    seed: int = 0
    time_budget: float | None = None  # seconds; None trains every planned step
    share_prefix: bool = False  # read a beginning the chats share once per batch (same math)


@dataclass
class SFTResult:
    """A trained (or cached) adapter: its folder and the report of the run that trained it."""

    folder: Path
    report: dict
    from_cache: bool


def finetune(
    lm: LM,
    chats: Sequence[Sequence[Message]],
    settings: SFTSettings = SFTSettings(),
    *,
    validation: Sequence[Sequence[Message]] = (),
    cache: bool = True,
    progress: bool = True,
    desc: str = "LoRA SFT",
) -> SFTResult:
    """Train a LoRA adapter on ``chats`` (each a list of messages ending in an answer).

    The model is left as it was: use the adapter with ``using_adapter(lm.model, result.folder)``.
    With ``cache`` the adapter is kept under ``adapter_cache_dir()`` by a fingerprint of the
    tokenized data, the settings, the base model's weights and ``TRAINING_FORMAT``; a second
    call with the same inputs reads it (``result.from_cache``) instead of training.
    """
    if lora_layers(lm.model):
        raise ValueError("lm.model already carries a LoRA adapter: remove_lora(lm.model) first.")

    def encode(rows: Sequence[Sequence[Message]]) -> list[Tokenized]:
        return [
            encode_chat(lm, m, mask_prompt=settings.mask_prompt, end_of_turn=settings.end_of_turn)
            for m in rows
        ]

    train_rows, val_rows = encode(chats), encode(validation)
    key = fingerprint(
        TRAINING_FORMAT,
        "sft",
        asdict(settings),
        [(t.ids, t.counted) for t in train_rows],
        [(t.ids, t.counted) for t in val_rows],
        model_identity(lm.model),
    )
    trained: dict = {}

    def run(folder: Path) -> None:
        torch.manual_seed(settings.seed)
        batches = make_batches(
            train_rows, settings.batch_size, seed=settings.seed, share_prefix=settings.share_prefix
        )
        val_batches = (
            make_batches(
                val_rows, settings.batch_size, shuffle=False, share_prefix=settings.share_prefix
            )
            if val_rows
            else []
        )
        add_lora(
            lm.model,
            r=settings.r,
            alpha=settings.alpha,
            targets=settings.targets,
            layers=settings.layers,
        )
        n_trainable = sum(p.numel() for p in lora_parameters(lm.model))
        try:
            val_before = evaluate_loss(lm.model, val_batches) if val_batches else None
            rep = train(
                lm.model,
                batches,
                epochs=settings.epochs,
                lr=settings.lr,
                seed=settings.seed,
                time_budget=settings.time_budget,
                progress=progress,
                desc=desc,
            )
            val_after = evaluate_loss(lm.model, val_batches) if val_batches else None
            save_adapter(lm.model, folder, base_model_name=base_model_name(lm))
        finally:
            remove_lora(lm.model)
        trained.update(
            asdict(rep),
            tokens_per_second=rep.tokens_per_second,
            examples=len(train_rows),
            trainable_parameters=n_trainable,
            val_loss_before=val_before,
            val_loss_after=val_after,
            settings=asdict(settings),
            fingerprint=key,
        )
        (folder / REPORT_FILE).write_text(json.dumps(trained, indent=1) + "\n", encoding="utf-8")

    if not cache:
        folder = Path(tempfile.mkdtemp(prefix="llmlab-adapter-"))
        run(folder)
        return SFTResult(folder=folder, report=trained, from_cache=False)
    folder = cached_adapter(key, run)
    report = json.loads((folder / REPORT_FILE).read_text(encoding="utf-8"))
    return SFTResult(folder=folder, report=report, from_cache=not trained)
