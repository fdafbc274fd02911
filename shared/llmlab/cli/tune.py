"""``llmlab tune DATA.jsonl --out DIR``: fine-tune the bundled model on your own chats (LoRA).

DATA.jsonl is OpenAI's fine-tuning chat format: one ``{"messages": [...]}`` per line, each
ending in the assistant answer you want (``llmlab.training.chat_data``); lines with ``"tools"``
and ``tool_calls`` are written into the prompt the way ``llmlab serve`` does. A share of the
chats (``--val-fraction``) is held out to measure the validation loss before and after.
Training shows a progress bar (loss, tokens/s, ETA) and stops at ``--time-budget`` seconds.
DIR gets the adapter in peft's format (``adapter_config.json`` + ``adapter_model.safetensors``,
loadable by ``peft.PeftModel.from_pretrained``) and ``training_report.json``; ``--adapter DIR``
on ``ask``, ``chat``, ``research``, ``serve`` and ``explore`` uses it (``add_adapter_option``,
``adapted_lm``, ``adapted_chat``: the flag checks the folder before any model loads). The same data, settings
and model train once: a second run copies the adapter from the cache (``--no-cache`` retrains).

Bad data (not JSONL, a line without an assistant answer, a chat longer than the context window,
an empty file), a bad flag, or an ``--out`` folder holding other files: one line on stderr,
exit code 2, nothing written.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from llmlab.cli.errors import ArgumentParser, CliError, run
from llmlab.cli.quiet import quiet_libraries

FLAGS = {
    "lr": "--lr",
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "fraction": "--val-fraction",
}
COPIED = ("adapter_config.json", "adapter_model.safetensors", "training_report.json")


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="llmlab tune",
        description="Fine-tune the language model on your chats (OpenAI's JSONL format) with "
        "LoRA; save the adapter in peft's format.",
    )
    p.add_argument("data", help='JSONL file, one {"messages": [...]} chat per line')
    p.add_argument("--out", required=True, help="folder to write the adapter into")
    p.add_argument("--epochs", type=int, default=1, help="passes over the data (default 1)")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    p.add_argument("--rank", type=int, default=8, help="LoRA rank r (default 8)")
    p.add_argument("--alpha", type=float, default=None, help="LoRA alpha (default 2 x rank)")
    p.add_argument(
        "--top-blocks",
        type=int,
        default=None,
        help="adapt only the last N blocks (default: all): cheaper, often as good",
    )
    p.add_argument("--batch-size", type=int, default=8, help="chats per step (default 8)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share held out (default 0.1)")
    p.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="stop training after SECONDS (default: none)",
    )
    p.add_argument(
        "--train-on-prompts",
        action="store_true",
        help="count the loss on every token, not only the answers",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the init (default 0)")
    p.add_argument("--model", default=None, help="model name (default: bundled SmolLM2)")
    p.add_argument("--no-cache", action="store_true", help="train even if this run is cached")
    return p


def _check_flags(args: argparse.Namespace) -> None:
    for flag, value in (
        ("--epochs", args.epochs),
        ("--rank", args.rank),
        ("--batch-size", args.batch_size),
    ):
        if value < 1:
            raise CliError(f"{flag} must be 1 or more, got {value}.")
    if not args.lr > 0:
        raise CliError(f"--lr must be more than 0, got {args.lr} (LoRA works well near 1e-3).")
    if args.top_blocks is not None and args.top_blocks < 1:
        raise CliError(f"--top-blocks must be 1 or more, got {args.top_blocks}.")
    if args.time_budget is not None and not args.time_budget > 0:
        raise CliError(f"--time-budget must be more than 0 seconds, got {args.time_budget}.")
    if not 0 <= args.val_fraction < 1:
        raise CliError(f"--val-fraction must be at least 0 and below 1, got {args.val_fraction}.")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out} is a file: give a folder for the adapter.")
    if out.is_dir() and any(out.iterdir()) and not (out / "adapter_config.json").is_file():
        raise CliError(
            f"--out {out} is a folder with other files in it: give a new or empty folder "
            "(or an adapter folder to overwrite)."
        )


def _plain_chats(examples: list) -> list[list[dict]]:
    """Chats with tools and tool calls rendered as text, the way ``llmlab serve`` prompts."""
    from llmlab.tool_use.text_format import render_messages

    out = []
    for ex in examples:
        if ex.tools or any(m.get("tool_calls") or m["role"] == "tool" for m in ex.messages):
            try:
                rendered = render_messages(ex.messages, ex.tools or None)
            except ValueError as exc:
                raise ValueError(f"line {ex.line}: {exc}") from None
            weights = [m.get("weight", 1) for m in ex.messages if m["role"] == "assistant"]
            answers = [m for m in rendered if m["role"] == "assistant"]  # one per answer, in order
            for m, w in zip(answers, weights, strict=True):
                m["weight"] = w
            out.append(rendered)
        else:
            out.append([dict(m, content=m.get("content") or "") for m in ex.messages])
    return out


def tune(args: argparse.Namespace) -> int:
    from llmlab.training.chat_data import read_chat_jsonl, split_validation

    _check_flags(args)
    examples = read_chat_jsonl(args.data)  # bad file or line: ValueError, exit 2
    train_ex, val_ex = split_validation(examples, args.val_fraction, seed=args.seed)
    train_chats, val_chats = _plain_chats(train_ex), _plain_chats(val_ex)
    quiet_libraries()
    import llmlab
    from llmlab.training.sft import SFTSettings, encode_chat, finetune

    lm = llmlab.load_lm(args.model)
    window = lm.context_length
    for ex, chat in zip(train_ex + val_ex, train_chats + val_chats, strict=True):
        try:
            n = len(encode_chat(lm, chat, mask_prompt=not args.train_on_prompts))
        except ValueError as exc:
            raise ValueError(f"{Path(args.data).name} line {ex.line}: {exc}") from None
        if n > window:
            raise CliError(
                f"{Path(args.data).name} line {ex.line}: {n:,} tokens, longer than the model's "
                f"context window ({window:,}): shorten or split that chat."
            )
    blocks = len(lm.model.get_decoder().layers)
    top = None if args.top_blocks is None else min(args.top_blocks, blocks)
    settings = SFTSettings(
        r=args.rank,
        alpha=args.alpha if args.alpha is not None else 2 * args.rank,
        layers=None if top is None else tuple(range(blocks - top, blocks)),
        lr=args.lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        mask_prompt=not args.train_on_prompts,
        seed=args.seed,
        time_budget=args.time_budget,
    )
    note(f"{len(train_chats)} chats to train on, {len(val_chats)} held out for validation.")
    result = finetune(
        lm, train_chats, settings, validation=val_chats, cache=not args.no_cache, desc="tune"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        shutil.copyfile(result.folder / name, out / name)
    _summary(result.report, result.from_cache, out)
    return 0


def _summary(report: dict, from_cache: bool, out: Path) -> None:
    losses = report["losses"]
    lines = [
        "(from the cache: this data, these settings and this model were trained before)"
        if from_cache
        else "",
        f"trained {report['steps']} of {report['planned_steps']} steps on {report['examples']} "
        f"chats: {report['tokens']:,} tokens in {report['seconds']:.0f} s "
        f"({report['tokens_per_second']:.0f} tokens/s); "
        f"{report['trainable_parameters']:,} trainable numbers",
        f"training loss {losses[0]:.3f} -> {losses[-1]:.3f} (first -> last step)" if losses else "",
    ]
    if report.get("val_loss_before") is not None:
        lines.append(
            f"validation loss {report['val_loss_before']:.3f} -> {report['val_loss_after']:.3f}"
        )
    if report.get("stopped_by_budget"):
        lines.append("stopped by --time-budget before the last step")
    lines.append(f'adapter written to {out}; try it: llmlab explore "..." --chat --adapter {out}')
    print("\n".join(line for line in lines if line))


# --- the --adapter flag of the other commands ------------------------------------------------


def adapter_folder(text: str) -> Path:
    """argparse ``type=`` of ``--adapter``: the folder, checked before any model loads."""
    from llmlab.training.lora import read_adapter_config

    try:
        read_adapter_config(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return Path(text)


def add_adapter_option(parser: argparse.ArgumentParser) -> None:
    """``--adapter DIR``: a LoRA adapter (``llmlab tune --out DIR``, or peft's) on the model."""
    parser.add_argument(
        "--adapter",
        type=adapter_folder,
        default=None,
        metavar="DIR",
        help="use a LoRA adapter (what `llmlab tune --out DIR` or peft wrote)",
    )


def adapted_lm(folder: Path | None, model: str | None = None) -> Any:
    """The language model with the adapter in ``folder`` merged in; None without an adapter
    (the command then loads its model as usual)."""
    if folder is None:
        return None
    import llmlab
    from llmlab.training.lora import apply_adapter

    lm = llmlab.load_lm(model)
    apply_adapter(lm.model, folder)
    return lm


def adapted_chat(folder: Path | None) -> Any:
    """A ``LocalChat`` over the model with the adapter merged in; None without an adapter."""
    lm = adapted_lm(folder)
    if lm is None:
        return None
    from llmlab.chat.local import LocalChat

    return LocalChat(lm)


def note(message: str) -> None:
    print(f"llmlab tune: {message}", file=sys.stderr)


def cli(argv: list[str] | None = None) -> int:
    """Run ``llmlab tune``; bad input -> one line on stderr, exit code 2, nothing written."""
    return run("tune", lambda: tune(_parser().parse_args(argv)), FLAGS)


if __name__ == "__main__":
    raise SystemExit(cli())
