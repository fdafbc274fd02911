"""Check llmlab's acc / acc_norm against lm-evaluation-harness itself, item by item.

lm-eval is not a dependency of LLM Lab (it pulls datasets, pyarrow, pandas, evaluate, ...), so
this check runs only where it is installed; without it the script says how and exits. It
writes wiki-mc's test items as a local lm-eval task (``dataset_path: json`` + the ARC-style
template ``Question: {{question}}\\nAnswer:``, run through ``--include_path`` semantics via a
``TaskManager``), scores them with lm-eval's ``HFLM`` around the already-loaded bundled model,
and compares every option's log-likelihood and every item's acc / acc_norm with
``llmlab.evaluation``.

    python benchmarks/check_lm_eval.py            # the first 50 test items
    python benchmarks/check_lm_eval.py --items 200

An environment with lm-eval but without touching the project's: a venv whose ``.pth`` file adds
``.venv``'s site-packages (``import site; site.addsitedir(".../.venv/lib/python3.11/site-packages")``),
then ``pip install lm-eval`` there (torch stays the project's: check with ``--dry-run``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

TASK_YAML = """\
task: llmlab_wiki_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{answer}}}}"
metric_list:
  - metric: acc
  - metric: acc_norm
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=50, help="how many test items (max 200)")
    args = parser.parse_args()
    try:
        import lm_eval
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError:
        print("lm-eval is not installed here: see this script's docstring. Nothing checked.")
        return 2

    import llmlab
    from llmlab.evaluation.benchmarks import load_wiki_mc
    from llmlab.evaluation.loglikelihood import batch_choice_logprobs
    from llmlab.evaluation.multiple_choice import cloze_requests, score_acc, score_acc_norm

    items = load_wiki_mc().test[: args.items]
    lm = llmlab.load_lm()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "wiki-mc-test.jsonl"
        data.write_text(
            "".join(
                json.dumps(
                    {
                        "id": it.id,
                        "question": it.question,
                        "choices": list(it.choices),
                        "answer": it.answer,
                    }
                )
                + "\n"
                for it in items
            ),
            encoding="utf-8",
        )
        (Path(tmp) / "llmlab_wiki_mc.yaml").write_text(TASK_YAML.format(data=data))
        start = time.perf_counter()
        results = lm_eval.simple_evaluate(
            model=HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, device="cpu", batch_size=16),
            tasks=["llmlab_wiki_mc"],
            task_manager=TaskManager(include_path=tmp),
            log_samples=True,
        )
        harness_seconds = time.perf_counter() - start
    samples = sorted(results["samples"]["llmlab_wiki_mc"], key=lambda s: s["doc_id"])
    harness_lls = [[float(r[0][0]) for r in s["resps"]] for s in samples]  # per option

    start = time.perf_counter()
    ours = batch_choice_logprobs(lm, cloze_requests(items))
    ours_seconds = time.perf_counter() - start
    acc, acc_norm = score_acc(items, ours.logprobs), score_acc_norm(items, ours.logprobs)

    diff = max(
        abs(a - b)
        for row_h, row_o in zip(harness_lls, ours.logprobs, strict=True)
        for a, b in zip(row_h, row_o, strict=True)
    )
    same_acc = [s["acc"] for s in samples] == acc.correct
    same_norm = [s["acc_norm"] for s in samples] == acc_norm.correct
    table = results["results"]["llmlab_wiki_mc"]
    print(f"lm-eval {lm_eval.__version__} vs llmlab on {len(items)} wiki-mc test items:")
    print(
        f"  largest |log-likelihood difference| over {sum(map(len, harness_lls))} options: {diff:.1e}"
    )
    print(
        f"  acc       lm-eval {table['acc,none']:.3f}  llmlab {acc.accuracy:.3f}  "
        f"same per item: {same_acc}"
    )
    print(
        f"  acc_norm  lm-eval {table['acc_norm,none']:.3f}  llmlab {acc_norm.accuracy:.3f}  "
        f"same per item: {same_norm}"
    )
    print(
        f"  time: lm-eval {harness_seconds:.1f} s (each option read with its prompt), "
        f"llmlab {ours_seconds:.1f} s (each prompt read once; {ours.tokens_read} vs "
        f"{ours.tokens_separately} token positions)"
    )
    return 0 if diff < 1e-3 and same_acc and same_norm else 1


if __name__ == "__main__":
    sys.exit(main())
