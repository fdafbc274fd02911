"""Two reports that keep LLM Lab's speed visible.

``python benchmarks/report.py durations JUNIT.xml --out FILE.md`` (``make test`` runs it): turns a
pytest run's JUnit XML into per-notebook and per-cell times: each notebook's total, the 10 slowest
cells, the 10 slowest unit tests, and flags for any cell over 30 s or notebook over 90 s (the
budget on an idle 2-core machine).

``python benchmarks/report.py results --out benchmarks/RESULTS.md`` (``make bench``): runs every
``benchmarks/bench_*.py`` and writes ONE generated file with the machine (cores, CPU model), the
date, the library versions and each benchmark's printed figures. Notes link to it instead of
copying numbers that drift.

Leaves out: comparing runs over time, and judging figures (the benchmarks print, they don't
assert). Timings from a busy machine say so only if you note it: the file records the load average.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import platform
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CELL_BUDGET_S = 30.0
NOTEBOOK_BUDGET_S = 90.0
VERSIONS = ["torch", "transformers", "sentence-transformers", "tiktoken", "numpy", "jupyterlab"]


def read_junit(path: Path) -> list[tuple[str, str, float, str]]:
    """(file or notebook, test or cell name, seconds, outcome) for every test case."""
    rows = []
    for case in ET.parse(path).getroot().iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        if classname.endswith(".ipynb"):  # nbval: phase-1-x.lesson.ipynb -> phase-1-x/lesson.ipynb
            where = classname.replace(".", "/", 1)
        else:
            where = classname.replace(".", "/") + ".py"
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                outcome = tag
        rows.append((where, name, float(case.get("time", 0.0)), outcome))
    return rows


def durations_markdown(
    rows: list[tuple[str, str, float, str]], source: str, workers: int = 0
) -> str:
    notebooks: dict[str, float] = defaultdict(float)
    cells = []
    tests = []
    for where, name, seconds, outcome in rows:
        if where.endswith(".ipynb"):
            notebooks[where] += seconds
            cells.append((seconds, where, name, outcome))
        else:
            tests.append((seconds, where, name, outcome))
    slow_cells = [c for c in cells if c[0] > CELL_BUDGET_S]
    slow_nbs = [nb for nb, s in notebooks.items() if s > NOTEBOOK_BUDGET_S]
    total = sum(r[2] for r in rows)
    lines = [
        "# Test durations",
        "",
        f"From `{source}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{len(rows)} tests and cells, {total:.0f} s in all "
        f"({sum(c[0] for c in cells):.0f} s in {len(notebooks)} notebooks, "
        f"{sum(t[0] for t in tests):.0f} s in unit tests). {_load_note()}",
        "",
        f"Budget on an idle 2-core machine: no cell over {CELL_BUDGET_S:.0f} s, "
        f"no notebook over {NOTEBOOK_BUDGET_S:.0f} s.",
        "",
    ]
    if workers > 1:
        lines += [
            f"Run in {workers} parallel processes: cells shared the cores, so each time is "
            "longer than a learner waits alone. `make timings` runs the notebooks one at "
            "a time for the budget check.",
            "",
        ]
    if slow_cells or slow_nbs:
        lines += ["**Over budget:**", ""]
        lines += [f"- notebook `{nb}`: {notebooks[nb]:.1f} s" for nb in slow_nbs]
        lines += [f"- `{nb}` {name}: {s:.1f} s" for s, nb, name, _ in slow_cells]
        lines.append("")
    else:
        lines += ["Every cell and notebook is within budget.", ""]
    lines += ["## Notebooks", "", "| notebook | seconds | cells |", "|---|---:|---:|"]
    count = defaultdict(int)
    for _, nb, _, _ in cells:
        count[nb] += 1
    for nb, s in sorted(notebooks.items(), key=lambda kv: -kv[1]):
        flag = "  **over budget**" if s > NOTEBOOK_BUDGET_S else ""
        lines.append(f"| `{nb}` | {s:.1f}{flag} | {count[nb]} |")
    lines += [
        "",
        "## Slowest 10 cells",
        "",
        "| seconds | notebook | cell | outcome |",
        "|---:|---|---|---|",
    ]
    for s, nb, name, outcome in sorted(cells, reverse=True)[:10]:
        lines.append(f"| {s:.1f} | `{nb}` | {name} | {outcome} |")
    lines += [
        "",
        "## Slowest 10 unit tests",
        "",
        "| seconds | file | test | outcome |",
        "|---:|---|---|---|",
    ]
    for s, where, name, outcome in sorted(tests, reverse=True)[:10]:
        lines.append(f"| {s:.1f} | `{where}` | {name} | {outcome} |")
    return "\n".join(lines) + "\n"


def _load_note() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return ""
    return f"Load average now: {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores."


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(pkg: str) -> str:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return "not installed"


def earlier_sections(path: Path) -> dict[str, str]:
    """The ``## bench_x`` sections of an earlier results file, by benchmark name."""
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    date = next(
        (ln[len("- date: ") :] for ln in text.splitlines() if ln.startswith("- date: ")), ""
    )
    sections = {}
    for part in text.split("\n## ")[1:]:
        name, body = part.split("\n", 1)
        if date and "UTC" not in body.split("\n```", 1)[0]:  # an undated section: the file's date
            body = body.replace(".py` (", f".py` ({date}, ", 1)
        sections[name.strip()] = f"## {name.strip()}\n{body.rstrip()}\n"
    return sections


def results_markdown(
    runs: list[tuple[str, float, int, str]], kept: dict[str, str] | None = None
) -> str:
    lines = [
        "# Benchmark results",
        "",
        "Generated by `make bench` (`benchmarks/report.py results`); do not edit by hand: "
        "run it again on your machine to get your figures.",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {os.cpu_count()} cores, {cpu_model()}, {platform.system()} "
        f"{platform.release()}",
        f"- Python {platform.python_version()}; "
        + ", ".join(f"{p} {_version(p)}" for p in VERSIONS),
        f"- {_load_note() or 'load average unknown'} (a busy machine gives slower figures)",
        "",
    ]
    ran = {name for name, *_ in runs}
    kept = {name: text for name, text in (kept or {}).items() if name not in ran}
    if kept:
        lines += [
            f"Kept from an earlier run (their own date is in the section): {', '.join(sorted(kept))}.",
            "",
        ]
    skipped = [
        s.stem
        for s in sorted((ROOT / "benchmarks").glob("bench_*.py"))
        if s.stem not in ran and s.stem not in kept
    ]
    if skipped:
        lines += [f"Not run (yet, or left out with `--only`): {', '.join(skipped)}.", ""]
    sections = {}
    for name, seconds, code, out in runs:
        status = "" if code == 0 else f", **exit code {code}**"
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        sections[name] = "\n".join(
            [
                f"## {name}",
                "",
                f"`python benchmarks/{name}.py` ({seconds:.0f} s{status}, {when}, "
                f"{_load_note() or 'load unknown'})",
                "",
                "```text",
                out.rstrip() or "(printed nothing)",
                "```",
                "",
            ]
        )
    sections.update(kept)
    lines += [sections[name] for name in sorted(sections)]
    return "\n".join(lines)


def run_benchmarks(only: list[str], out: Path) -> list[tuple[str, float, int, str]]:
    """Run each benchmark; rewrite ``out`` after each one, so a cut-short run keeps its figures."""
    runs: list[tuple[str, float, int, str]] = []
    kept = earlier_sections(out) if only else {}  # `--only`: keep the other benchmarks' figures
    for script in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        if only and script.stem not in only:
            continue
        print(f"running {script.name} ...", flush=True)
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True
        )
        text = done.stdout + (f"\n[stderr]\n{done.stderr[-2000:]}" if done.returncode else "")
        runs.append((script.stem, time.perf_counter() - t0, done.returncode, text))
        print(done.stdout, end="", flush=True)
        out.write_text(results_markdown(runs, kept), encoding="utf-8")
    return runs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("durations", help="per-notebook and per-cell times from JUnit XML")
    d.add_argument("junit", type=Path)
    d.add_argument("--out", type=Path, default=ROOT / ".llmlab-reports" / "durations.md")
    d.add_argument("--workers", type=int, default=0, help="pytest-xdist processes of the run")
    r = sub.add_parser("results", help="run benchmarks/bench_*.py, write one results file")
    r.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    r.add_argument("--only", action="append", default=[], help="e.g. bench_models (repeatable)")
    args = ap.parse_args(argv)

    if args.command == "durations":
        if not args.junit.is_file():
            print(
                f"report.py: {args.junit} not found (run pytest with --junitxml)", file=sys.stderr
            )
            return 2
        text = durations_markdown(read_junit(args.junit), str(args.junit), args.workers)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        summary = text.split("## Notebooks")[0].strip().splitlines()
        print("\n".join(line for line in summary if line and not line.startswith("# ")))
        print(f"durations report: {args.out}")
        return 0
    runs = run_benchmarks(args.only, args.out)
    print(f"results: {args.out}")
    return max((code for _, _, code, _ in runs), default=0)


if __name__ == "__main__":
    raise SystemExit(main())
