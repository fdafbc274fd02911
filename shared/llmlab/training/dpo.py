"""DPO (Direct Preference Optimization) by hand, with LoRA, on a CPU.

DPO trains the model itself on preference pairs, with no separate reward model and no
sampling. For a prompt x with a chosen answer y_c and a rejected one y_r (Rafailov et al. 2023,
eq. 7)::

    loss = -log sigmoid( beta * [ (log pi(y_c|x) - log ref(y_c|x)) - (log pi(y_r|x) - log ref(y_r|x)) ] )

``pi`` is the model being trained, ``ref`` the model it started from, and ``beta *
(log pi(y|x) - log ref(y|x))`` is the *implicit reward* of an answer: how much more likely the
training made it. The loss pushes the chosen answer's reward above the rejected one's; ``beta``
says how far the model may drift from ``ref`` for it (small beta: far).

Two savings make it fit a laptop CPU, and neither changes the result:

- **The reference model is the adapter switched off**, so no second copy of the model. Its
  log-probs never change, so they are computed once, before training.
- **LoRA on the top blocks only**, and the frozen blocks below read once
  (``llmlab.training.frozen_blocks``): each step runs only the top blocks and the output head.

Covers:
- ``encode_pair``: a ``PreferencePair`` -> two ``Tokenized`` (chosen, rejected) whose counted
  tokens are the answer (chat pairs: the chat template, ``<|im_end|>`` counted).
- ``dpo_loss``: the formula above, with the implicit rewards (checked against the paper's
  formula and trl's code in ``tests/training/test_dpo.py``).
- ``PreferenceSet``: pairs encoded once, their frozen pass computed once per first block.
- ``train_dpo``: the loop (AdamW on the LoRA parameters, a tqdm bar, the loss, reward margin
  and accuracy per step, held-out accuracy every few steps), adapters cached by fingerprint;
  ``heldout_scores`` and ``wins``: the held-out accuracy (ties count half).

Leaves out: the DPO variants (IPO, hinge, label smoothing: trl has them), on-policy data (pairs
sampled from the model being trained), learning-rate schedules, and multi-process training.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.nn import functional as F

from llmlab.training.adapter_cache import (
    TRAINING_FORMAT,
    cached_adapter,
    fingerprint,
    model_identity,
)
from llmlab.training.frozen_blocks import FrozenPass, frozen_pass, rows_logprobs
from llmlab.training.lora import (
    add_lora,
    lora_layers,
    lora_parameters,
    remove_lora,
    save_adapter,
)
from llmlab.training.preferences import PreferencePair
from llmlab.training.sft import Tokenized, encode_chat

if TYPE_CHECKING:
    from llmlab.runtime.models import LM

DPO_FORMAT = 1  # bump when this module changes what an adapter learns: cached adapters retrain
REPORT_FILE = "dpo_report.json"  # written beside the adapter: settings and per-step history


# --- pairs -> token ids -----------------------------------------------------------------------


def encode_pair(lm: LM, pair: PreferencePair) -> tuple[Tokenized, Tokenized]:
    """(chosen, rejected) token ids; ``counted`` marks the answer tokens whose log-probs count.

    Chat pairs go through the chat template (``encode_chat``: the answer and ``<|im_end|>``
    counted). Plain pairs are encoded as lm-evaluation-harness does: the prompt alone, then
    prompt + answer whole; the answer is what the whole adds after the prompt's tokens.
    """

    def one(answer: str) -> Tokenized:
        if pair.chat:
            messages = [
                {"role": "user", "content": pair.prompt},
                {"role": "assistant", "content": answer},
            ]
            return encode_chat(lm, messages, mask_prompt=True, end_of_turn=True)
        context = lm.tokenizer(pair.prompt, add_special_tokens=False)["input_ids"]
        whole = lm.tokenizer(pair.prompt + answer, add_special_tokens=False)["input_ids"]
        n = len(context) if whole[: len(context)] == context else len(context) - 1
        if n >= len(whole):
            raise ValueError(f"The answer {answer!r} adds no token after {pair.prompt!r}.")
        return Tokenized(ids=whole, counted=[False] * n + [True] * (len(whole) - n))

    return one(pair.chosen), one(pair.rejected)


# --- the loss ------------------------------------------------------------------------------


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    beta: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair DPO losses and the implicit rewards of both answers, each ``(B,)``.

    ``reward = beta * (log pi(y|x) - log ref(y|x))``; ``loss = -log sigmoid(reward_chosen -
    reward_rejected)``: 0.693 (log 2) when the policy is the reference. Take ``.mean()`` of the
    losses to train.
    """
    if beta <= 0:
        raise ValueError(f"beta must be > 0 (0.1 is the usual start), got {beta}.")
    chosen_rewards = beta * (policy_chosen_logps - reference_chosen_logps)  # (B,)
    rejected_rewards = beta * (policy_rejected_logps - reference_rejected_logps)  # (B,)
    losses = -F.logsigmoid(chosen_rewards - rejected_rewards)  # (B,)
    return losses, chosen_rewards.detach(), rejected_rewards.detach()


class PreferenceSet:
    """Preference pairs encoded once (sequence 2i = pair i's chosen answer, 2i + 1 its rejected
    one), with their frozen pass computed on first use and kept (one per first block)."""

    def __init__(self, lm: LM, pairs: Sequence[PreferencePair]) -> None:
        if not pairs:
            raise ValueError("No preference pairs.")
        self.lm, self.pairs = lm, list(pairs)
        self.sequences = [s for p in self.pairs for s in encode_pair(lm, p)]
        self._frozen: dict[int, FrozenPass] = {}

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def tokens(self) -> int:
        """Tokens in all sequences (both answers of every pair, prompts included)."""
        return sum(len(s) for s in self.sequences)

    def key(self) -> list:
        """What the cache fingerprint needs to know about the data."""
        return [(s.ids, s.counted) for s in self.sequences]

    def frozen(self, first_block: int, *, progress: bool = True) -> FrozenPass:
        if first_block not in self._frozen:
            self._frozen[first_block] = frozen_pass(
                self.lm.model, self.sequences, first_block, progress=progress
            )
        return self._frozen[first_block]

    def logps(
        self, first_block: int, *, batch_pairs: int = 16
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(chosen, rejected) log-probs ``(n,)`` each under the model as it is now (adapter
        included), computed on the frozen pass: only the top blocks run."""
        frozen = self.frozen(first_block)
        out = []
        with torch.no_grad():
            for at in range(0, len(self.pairs), batch_pairs):
                rows = [
                    s
                    for i in range(at, min(at + batch_pairs, len(self.pairs)))
                    for s in (2 * i, 2 * i + 1)
                ]
                out.append(rows_logprobs(self.lm.model, frozen, rows))
        both = torch.cat(out)  # (2n,): chosen, rejected, chosen, ...
        return both[0::2], both[1::2]

    def reference_logps(self, first_block: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(chosen, rejected) reference log-probs ``(n,)`` each, from the frozen pass."""
        logps = self.frozen(first_block).logps
        return logps[0::2], logps[1::2]


# --- training -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DPOSettings:
    """Every choice that changes what the adapter learns (all part of the cache key)."""

    beta: float = 0.1  # how far from the reference the policy may drift (DPO paper, trl: 0.1)
    lr: float = 5e-4  # LoRA takes a far higher rate than full fine-tuning (trl's default 1e-6)
    epochs: int = 1
    batch_size: int = 8  # pairs per step
    r: int = 8
    alpha: float = 16
    top_blocks: int = 4  # LoRA on the last blocks only: the rest is read once (frozen_pass)
    eval_every: int = 4  # held-out accuracy every this many steps (and at the start and end)
    seed: int = 0


@dataclass
class DPOResult:
    """A trained (or cached) DPO adapter: its folder, per-step history and held-out checks."""

    folder: Path
    first_block: int
    history: list[dict]  # one dict per step: loss, margin, accuracy, chosen/rejected rewards
    heldout: list[dict]  # {step, accuracy, margin} at the evaluation steps
    report: dict
    from_cache: bool


TIE = 1e-4  # margins smaller than this are float rounding (padding moves a sum's 6th digit)


def wins(margin: torch.Tensor) -> torch.Tensor:
    """Per pair: 1.0 if the chosen answer's reward is higher, 0.0 if lower, 0.5 on a tie
    (``|margin| < TIE``: at step 0 the policy is the reference, so every pair ties)."""
    return torch.where(margin.abs() < TIE, 0.5, (margin > 0).double())


def heldout_scores(model: Any, data: PreferenceSet, first_block: int, beta: float) -> dict:
    """Implicit-reward accuracy (ties count half) and mean margin on held-out pairs, now."""
    chosen, rejected = data.logps(first_block)
    ref_chosen, ref_rejected = data.reference_logps(first_block)
    _, r_c, r_r = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta)
    margin = r_c - r_r  # (n,)
    return {"accuracy": float(wins(margin).mean()), "margin": float(margin.mean())}


def _train(
    model: Any,
    train: PreferenceSet,
    heldout: PreferenceSet,
    s: DPOSettings,
    first_block: int,
    progress: bool,
    desc: str,
) -> dict:
    from tqdm.auto import tqdm

    params = lora_parameters(model)
    optimizer = torch.optim.AdamW(params, lr=s.lr, weight_decay=0.0)
    frozen = train.frozen(first_block, progress=progress)
    ref = frozen.logps  # (2n,)
    rng = random.Random(s.seed)
    n = len(train)
    steps_per_epoch = (n + s.batch_size - 1) // s.batch_size
    history, evals = [], [{"step": 0, **heldout_scores(model, heldout, first_block, s.beta)}]
    start = time.perf_counter()
    with tqdm(
        total=s.epochs * steps_per_epoch, desc=desc, unit="step", disable=not progress
    ) as bar:
        for _ in range(s.epochs):
            order = list(range(n))
            rng.shuffle(order)
            for at in range(0, n, s.batch_size):
                pairs = order[at : at + s.batch_size]
                rows = [2 * i for i in pairs] + [2 * i + 1 for i in pairs]  # chosen..., rejected...
                logps = rows_logprobs(model, frozen, rows)  # (2B,)
                k = len(pairs)
                losses, r_c, r_r = dpo_loss(
                    logps[:k], logps[k:], ref[rows[:k]], ref[rows[k:]], s.beta
                )
                loss = losses.mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                step = len(history) + 1
                history.append(
                    {
                        "step": step,
                        "loss": loss.item(),
                        "margin": float((r_c - r_r).mean()),
                        "accuracy": float(wins(r_c - r_r).mean()),
                        "chosen_reward": float(r_c.mean()),
                        "rejected_reward": float(r_r.mean()),
                    }
                )
                if step % s.eval_every == 0 or step == s.epochs * steps_per_epoch:
                    evals.append(
                        {"step": step, **heldout_scores(model, heldout, first_block, s.beta)}
                    )
                bar.set_postfix(
                    loss=f"{loss.item():.3f}",
                    margin=f"{history[-1]['margin']:.2f}",
                    heldout=f"{evals[-1]['accuracy']:.2f}",
                )
                bar.update(1)
    seconds = time.perf_counter() - start
    chosen, rejected = heldout.logps(first_block)
    ref_chosen, ref_rejected = heldout.reference_logps(first_block)
    return {
        "history": history,
        "heldout": evals,
        "heldout_logps": {  # per held-out pair, so a cached run can still analyse them
            "policy_chosen": chosen.tolist(),
            "policy_rejected": rejected.tolist(),
            "reference_chosen": ref_chosen.tolist(),
            "reference_rejected": ref_rejected.tolist(),
        },
        "seconds": seconds,
        "pairs_per_second": s.epochs * n / seconds if seconds else 0.0,
        "frozen_pass_seconds": frozen.seconds,
        "frozen_pass_tokens": frozen.tokens,
    }


def train_dpo(
    lm: LM,
    train: PreferenceSet,
    heldout: PreferenceSet,
    settings: DPOSettings = DPOSettings(),
    *,
    cache: bool = True,
    progress: bool = True,
    desc: str = "DPO",
) -> DPOResult:
    """Train a LoRA adapter on the top ``settings.top_blocks`` blocks with DPO.

    The model is left as it was: use the adapter with ``using_adapter(lm.model, result.folder)``.
    With ``cache`` the adapter (and its report) is kept under ``adapter_cache_dir()`` by a
    fingerprint of the tokenized pairs, the settings and the base model's weights; a second
    call with the same inputs reads it instead of training (and reads no pair through the model).
    ``cache=False`` trains into a new temporary folder every time (delete it when done).
    """
    if lora_layers(lm.model):
        raise ValueError("lm.model already carries a LoRA adapter: remove_lora(lm.model) first.")
    n_blocks = len(lm.model.get_decoder().layers)
    if not 1 <= settings.top_blocks <= n_blocks:
        raise ValueError(f"top_blocks must be between 1 and {n_blocks}, got {settings.top_blocks}.")
    first_block = n_blocks - settings.top_blocks
    key = fingerprint(
        TRAINING_FORMAT,
        "dpo",
        DPO_FORMAT,
        asdict(settings),
        train.key(),
        heldout.key(),
        model_identity(lm.model),
    )
    trained: dict = {}

    def run(folder: Path) -> None:
        train.frozen(first_block, progress=progress)  # before the adapter exists: the reference
        heldout.frozen(first_block, progress=progress)
        torch.manual_seed(settings.seed)
        add_lora(lm.model, r=settings.r, alpha=settings.alpha, layers=range(first_block, n_blocks))
        try:
            trained.update(_train(lm.model, train, heldout, settings, first_block, progress, desc))
            save_adapter(lm.model, folder, base_model_name=lm.name)
        finally:
            remove_lora(lm.model)
        trained.update(
            settings=asdict(settings), pairs=len(train), heldout_pairs=len(heldout), fingerprint=key
        )
        (folder / REPORT_FILE).write_text(json.dumps(trained, indent=1) + "\n", encoding="utf-8")

    if cache:
        folder = cached_adapter(key, run)
        from_cache = not trained
    else:
        folder = Path(tempfile.mkdtemp(prefix="llmlab-dpo-"))
        run(folder)
        from_cache = False
    report = json.loads((folder / REPORT_FILE).read_text(encoding="utf-8"))
    return DPOResult(
        folder=folder,
        first_block=first_block,
        history=report["history"],
        heldout=report["heldout"],
        report=report,
        from_cache=from_cache,
    )
