"""``llmlab attend "text"``: what each token looks at, in the heads worth seeing.

Without flags it answers the learner's question for a few chosen heads (an induction head if
the text repeats something, the head that links words to specific earlier words, the strongest
previous-token head): ``' Paris' -> ' capital' (0.41)``. ``--layer L`` lists that layer's heads
with their scores, ``--layer L --head H`` shows every token of one head, ``--html`` / ``--out``
writes the offline page (``llmlab.views.attention_page``) and prints its full path.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from llmlab.cli.errors import ArgumentParser, CliError, run

FLAGS = {"layer": "--layer", "head": "--head", "max_tokens": "--max-tokens"}
SHOWN_PER_HEAD = 12  # lines per head without --head; more would scroll the answer away
MIN_WEIGHT = 0.1  # weaker links are mostly noise next to the first token's share
HINT = (
    "more: --layer L --head H shows every token of one head; --layer L lists that layer's heads; "
    "--html writes an interactive page (--out FILE_OR_FOLDER to choose where)"
)


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="llmlab attend",
        description="Show which earlier tokens each token looks at in the bundled model.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        '  llmlab attend "The password is kelvorin-92. Repeat it: the password is kel"\n'
        '  llmlab attend "The cat sat on the mat. The cat" --layer 17 --head 4\n'
        '  llmlab attend "The cat sat on the mat. The cat" --html --out my-pages/',
    )
    p.add_argument("text", help="the text to run through the model")
    p.add_argument("--layer", type=int, default=None, help="layer to show (0-based)")
    p.add_argument("--head", type=int, default=None, help="head to show (needs --layer)")
    p.add_argument("--html", action="store_true", help="write an offline page (temp folder)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write the page to this file, or to FOLDER/attention.html",
    )
    p.add_argument("--max-tokens", type=int, default=512, help="refuse longer texts (memory)")
    p.add_argument("--model", default=None, help="language model (default: the bundled one)")
    return p


def page_path(out: Path | None) -> Path:
    """Where the page goes: ``out`` itself, ``out/attention.html`` for a folder, else a temp folder."""
    if out is None:
        return Path(tempfile.mkdtemp(prefix="llmlab-attend-")) / "attention.html"
    if out.is_dir() or str(out).endswith(("/", "\\")) or not out.suffix:
        return out / "attention.html"
    return out


def _quoted(t: str) -> str:
    from llmlab.views.attention_plots import show_token

    return repr(show_token(t))


def _print_links(tokens: list[str], w, limit: int | None, skip_recent: bool = False) -> None:
    """One line per token: the earlier token (not the first) it looks at most.

    With a ``limit``, only links of weight >= ``MIN_WEIGHT`` are shown, at most ``limit`` of the
    strongest, in text order; the rest are counted.
    """
    from llmlab.internals.heads import strongest_links

    links = strongest_links(w, skip_recent=skip_recent)  # at most one per token
    kept = links
    if limit is not None:
        strong = [k for k in links if k.weight >= MIN_WEIGHT]
        kept = sorted(sorted(strong, key=lambda k: -k.weight)[:limit], key=lambda k: k.query)
    width = max((len(_quoted(tokens[k.query])) for k in kept), default=0)
    for k in kept:
        print(
            f"  {_quoted(tokens[k.query]):>{width}} -> {_quoted(tokens[k.key])} ({k.weight:.2f})"
            f"   first token {w[k.query, 0]:.2f}"
        )
    if len(kept) < len(links):
        print(
            f"  ... and {len(links) - len(kept)} tokens with weaker lines "
            "(--layer and --head show every token)"
        )


def _body(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.head is not None and args.layer is None:
        raise CliError("--head needs --layer too, e.g. --layer 17 --head 4")
    if args.max_tokens < 1:
        raise CliError(f"--max-tokens must be at least 1, got {args.max_tokens}")

    from llmlab.internals.attention import attention_weights, token_ids
    from llmlab.internals.heads import head_scores, head_worth_seeing, interesting_heads
    from llmlab.runtime.architecture import check_layer_head
    from llmlab.runtime.models import load_lm
    from llmlab.views.attention_page import render_html

    if not args.text.strip():
        raise CliError(
            "the text is empty (or only spaces): give some words, e.g. "
            'llmlab attend "The capital of France is Paris"'
        )
    lm = load_lm(args.model)
    check_layer_head(lm, args.layer, args.head)
    ids = token_ids(lm, args.text)
    tokens, weights = attention_weights(lm, ids, max_tokens=args.max_tokens)  # (L, H, T, T)
    L, H, T, _ = weights.shape
    print(f"{lm.name}: {T} token{'s' if T != 1 else ''}, {L} layers x {H} heads")
    print("tokens:", " ".join(f"{i}:{_quoted(t)}" for i, t in enumerate(tokens)))
    scores = head_scores(weights, ids) if T >= 3 else None
    if scores is None:
        print("(choosing and scoring heads needs at least 3 tokens: give a longer text)")
    elif args.layer is None:
        print(
            "\nWhat each token looks at most, in the heads worth seeing (leaving out the first "
            "token, where idle heads park their attention):"
        )
        for pick in interesting_heads(weights, ids):
            print(f"\nL{pick.layer} H{pick.head}: {pick.why}")
            _print_links(
                tokens,
                weights[pick.layer, pick.head],
                SHOWN_PER_HEAD,
                skip_recent=pick.kind == "content",
            )
    else:
        for h in [args.head] if args.head is not None else range(H):
            print(scores.label(args.layer, h))
        if args.head is not None:
            print("  token -> the earlier token it looks at most (not counting the first)")
            _print_links(tokens, weights[args.layer, args.head], None)
    if args.html or args.out is not None:
        start, why = (args.layer or 0, args.head or 0), None
        if args.layer is None and scores is not None:
            pick = head_worth_seeing(weights, ids)
            start, why = (pick.layer, pick.head), pick.why
        elif args.head is None:
            start = (args.layer, 0)
        page = render_html(
            tokens,
            weights,
            args.layer,
            args.head,
            scores=scores,
            start=start,
            why=why,
            title=f"Attention in {lm.name}",
        )
        path = page_path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
        print(f"\nwrote {path.resolve()} ({len(page) / 1024:.0f} KB; opens offline in any browser)")
    print(f"\n{HINT}", file=sys.stdout)
    return 0


def cli(argv: list[str] | None = None) -> int:
    """``llmlab attend "text" [--layer L [--head H]] [--html] [--out FILE_OR_FOLDER]``."""
    return run("attend", lambda: _body(argv), FLAGS)
