"""Benchmark "chat with your docs": indexing a folder, re-indexing after an edit, answer latency.

    python benchmarks/bench_docchat.py              # 500 files
    python benchmarks/bench_docchat.py --files 100  # a quick smaller run

Goals (issue 11, on 2 CPU cores): re-index a 500-file folder after one file changed in <= 3 s;
time to first token <= 3 s and a full 60-token answer <= 10 s with 5 retrieved chunks.

- Folder: ``--files`` Markdown files cut from the vendored Python docs (``load_python_docs``), each
  a run of whole paragraphs of about 1,500 characters, written to a temporary folder; the index
  goes to a temporary ``LLMLAB_DOCS_CACHE``. Models are loaded before any timing starts.
- First index: ``DocsIndex.update()`` on the fresh folder: files/s and chunks/s.
- Re-index: one file edited, then a NEW ``DocsIndex`` (as a new ``llmlab ask`` process would: it
  loads the saved index, stats every file, re-embeds the edited one) is updated; median of 3 edits.
- Answer: ``DocChat.ask`` with k = 5 on 5 questions about the docs (abstention off so every one is
  answered): time to first token (retrieval + prompt + prefill + first token) and total time, with
  the number of tokens written. The model may stop before 60 tokens, so the 60-token time is also
  projected from the measured time per token (labelled as projected).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

QUESTIONS = [
    "How do I make a copy of a list?",
    "How do I read a file line by line?",
    "What is a virtual environment?",
    "How do I sort a dictionary by value?",
    "How do I format a number with two decimals?",
]


def make_folder(root: Path, n_files: int, size: int = 1500) -> int:
    """Write ``n_files`` Markdown files of ~``size`` characters of real docs text; returns bytes."""
    from llmlab.data.datasets import load_python_docs

    paras = [
        p.strip() for d in load_python_docs() for p in d.text.split("\n\n") if len(p.split()) >= 5
    ]
    written, i = 0, 0
    for k in range(n_files):
        body = []
        while sum(map(len, body)) < size:
            body.append(paras[i % len(paras)])
            i += 1
        path = root / f"section-{k // 50:02d}" / f"note-{k:03d}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = f"# Note {k}\n\n" + "\n\n".join(body) + "\n"
        path.write_text(text, encoding="utf-8")
        written += len(text)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-docchat-"))
    os.environ["LLMLAB_DOCS_CACHE"] = str(tmp / "cache")
    from llmlab.rag.docchat import DocChat
    from llmlab.runtime.models import load_lm
    from llmlab.search.docs_index import DocsIndex
    from llmlab.search.embeddings import default_embedder

    embedder, lm = default_embedder(), load_lm()
    folder = tmp / "docs"
    n_bytes = make_folder(folder, args.files)
    print(
        f"folder: {args.files} files, {n_bytes / 1e6:.2f} MB of Python-docs text; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load {os.getloadavg()[0]:.1f}"
    )

    index = DocsIndex(folder, embedder=embedder)
    report = index.update(progress=False)
    print(
        f"first index: {report.n_files} files, {report.n_chunks} chunks in {report.seconds:.1f} s = "
        f"{report.n_files / report.seconds:.1f} files/s, {report.n_chunks / report.seconds:.1f} chunks/s"
    )

    times = []
    for edit in range(3):
        path = folder / "section-00" / f"note-{edit:03d}.md"
        path.write_text(path.read_text(encoding="utf-8") + f"\nEdited {edit}.\n", encoding="utf-8")
        t0 = time.perf_counter()
        again = DocsIndex(folder, embedder=embedder)
        r = again.update(progress=False)
        times.append(time.perf_counter() - t0)
        assert r.changed == [path.relative_to(folder).as_posix()] and r.embedded < 10
    print(
        f"re-index after one edit (load index + stat {args.files} files + re-embed 1 file): "
        f"median {statistics.median(times):.2f} s of {[round(t, 2) for t in times]} (goal <= 3 s)"
    )

    bot = DocChat(again, lm=lm, k=5, max_new_tokens=60, min_cosine=-1.0)
    bot.ask(QUESTIONS[0], remember=False)  # warm-up: first call pays one-off costs
    ttft, total, per_token, n_tok = [], [], [], []
    for q in QUESTIONS:
        pieces: list[str] = []
        a = bot.ask(q, on_token=pieces.append, remember=False)
        n = len(lm.tokenizer(a.raw, add_special_tokens=False)["input_ids"])
        ttft.append(a.timings["first_token_s"])
        total.append(a.timings["total_s"])
        n_tok.append(n)
        if n > 1:
            per_token.append((a.timings["total_s"] - a.timings["first_token_s"]) / (n - 1))
    prompt_tokens = len(lm.tokenizer(a.prompt, add_special_tokens=False)["input_ids"])
    projected = statistics.median(ttft) + 59 * statistics.median(per_token)
    print(
        f"answer with 5 chunks (~{prompt_tokens} prompt tokens): time to first token median "
        f"{statistics.median(ttft):.2f} s (goal <= 3 s); total median {statistics.median(total):.2f} s "
        f"for a median of {statistics.median(n_tok)} tokens; projected 60-token answer "
        f"{projected:.2f} s (goal <= 10 s)"
    )


if __name__ == "__main__":
    main()
