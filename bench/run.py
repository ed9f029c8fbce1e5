"""Speed and memory: our index against the plain LangChain baseline, measured in the same run.

    python bench/run.py index    # index build: seconds, chunks/s, peak memory
    python bench/run.py search   # build, then warm search and ask latency p50/p95
    python bench/run.py all      # both (default)

Each system is measured in its own fresh process so that its peak memory is its own. Figures are
printed beside the baseline's, with the ratio ours/baseline, and written to ``--out`` as JSON and
Markdown. Default corpus: every context of CMRC 2018 dev (``../shared/datasets``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = ROOT.parent / "shared" / "datasets" / "cmrc2018" / "dev.json"
OUR_MODES = ("hybrid", "bm25", "dense")
#: Issue 2's speed targets on the 2-core reference machine.
TARGETS = {"build_seconds": 120.0, "search_p50_ms": 20.0, "search_p95_ms": 40.0}


def _percentiles(seconds: list[float]) -> dict[str, float]:
    from rag.eval.metrics import percentile

    ms = [s * 1000 for s in seconds]
    return {"p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95), "n": len(ms)}


def _timed(function, questions: list[str]) -> list[float]:
    times = []
    for question in questions:
        started = time.perf_counter()
        function(question)
        times.append(time.perf_counter() - started)
    return times


def child(args: argparse.Namespace) -> dict[str, Any]:
    """Measure one system (``ours`` or ``naive``) in this process; print the result as JSON."""
    from rag import Settings
    from rag.eval.configs import parse_config
    from rag.eval.datasets import load_dataset
    from rag.eval.runner import Builds, peak_rss_mib

    dataset = load_dataset(args.dataset)
    documents = dataset.documents[: args.docs] if args.docs else dataset.documents
    settings = Settings()
    questions = [item.question for item in dataset.items]
    random.Random(args.seed).shuffle(questions)
    result: dict[str, Any] = {"system": args.system, "documents": len(documents)}
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as workdir:
        builds = Builds(documents, Path(workdir))
        started = time.perf_counter()
        builds.embeddings(settings).embed_queries(["预热"])  # models may load lazily: count that here
        result["model_load_s"] = time.perf_counter() - started
        result["rss_before_build_mib"] = peak_rss_mib()
        modes = ("naive",) if args.system == "naive" else OUR_MODES
        configs = [parse_config(mode) for mode in modes]
        systems = {config.name: builds.system(config, config.settings(settings)) for config in configs}
        result["build"] = next(iter(systems.values())).build
        if "search" in args.tasks:
            for mode, system in systems.items():
                warm = questions[: args.warmup]
                _timed(lambda q: system.search(q, settings.k), warm)
                timed = questions[args.warmup : args.warmup + args.queries]
                result[f"search_{mode}"] = _percentiles(_timed(lambda q: system.search(q, settings.k), timed))
            main_system = systems[modes[0]]
            _timed(main_system.ask, questions[: args.warmup])
            result["ask"] = _percentiles(_timed(main_system.ask, questions[args.warmup : args.warmup + args.asks]))
        result["peak_rss_mib"] = peak_rss_mib()
    return result


def _run_child(system: str, args: argparse.Namespace, tasks: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "_child", "--system", system, "--tasks", tasks, "--dataset", str(args.dataset)]
    command += ["--docs", str(args.docs), "--queries", str(args.queries), "--asks", str(args.asks)]
    command += ["--warmup", str(args.warmup), "--seed", str(args.seed)]
    print(f"measuring {system} ({tasks}) …", file=sys.stderr, flush=True)
    completed = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _rows(ours: dict[str, Any], naive: dict[str, Any]) -> list[tuple[str, float | None, float | None, str]]:
    def get(result: dict[str, Any], *path: str) -> float | None:
        for key in path:
            result = result.get(key) if isinstance(result, dict) else None
        return result  # type: ignore[return-value]

    rows = [
        ("documents", ours["documents"], naive["documents"], ""),
        ("chunks", get(ours, "build", "chunks"), get(naive, "build", "chunks"), ""),
        ("index build (s)", get(ours, "build", "seconds"), get(naive, "build", "seconds"),
         f"≤ {TARGETS['build_seconds']:.0f}"),
        ("build throughput (chunks/s)", get(ours, "build", "chunks_per_s"), get(naive, "build", "chunks_per_s"), ""),
        ("embedding model load (s)", ours["model_load_s"], naive["model_load_s"], ""),
        ("peak RSS after build (MiB)", get(ours, "build", "peak_rss_mib"), get(naive, "build", "peak_rss_mib"), ""),
    ]
    if "ask" in ours:
        rows += [
            ("search p50 (ms), hybrid vs baseline", get(ours, "search_hybrid", "p50_ms"),
             get(naive, "search_naive", "p50_ms"), f"≤ {TARGETS['search_p50_ms']:.0f}"),
            ("search p95 (ms), hybrid vs baseline", get(ours, "search_hybrid", "p95_ms"),
             get(naive, "search_naive", "p95_ms"), f"≤ {TARGETS['search_p95_ms']:.0f}"),
            ("search p50 (ms), bm25 only", get(ours, "search_bm25", "p50_ms"), None, ""),
            ("search p50 (ms), dense only", get(ours, "search_dense", "p50_ms"), None, ""),
            ("ask p50 (ms)", get(ours, "ask", "p50_ms"), get(naive, "ask", "p50_ms"), ""),
            ("ask p95 (ms)", get(ours, "ask", "p95_ms"), get(naive, "ask", "p95_ms"), ""),
            ("peak RSS at end (MiB)", ours["peak_rss_mib"], naive["peak_rss_mib"], ""),
        ]
    return rows


def _cell(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}" if value >= 1 else f"{value:.2f}"


def _table(rows) -> list[list[str]]:
    table = [["measure", "ours", "naive baseline", "ours / baseline", "target (ours)"]]
    for label, ours, naive, target in rows:
        ratio = f"{ours / naive:.2f}" if ours is not None and naive else "–"
        table.append([label, _cell(ours), _cell(naive), ratio, target])
    return table


def _markdown(table: list[list[str]], machine: dict[str, Any], args: argparse.Namespace) -> str:
    head, *body = table
    lines = [
        "# Benchmarks",
        "",
        f"Corpus: every context of `{Path(args.dataset).parent.name}/{Path(args.dataset).name}`"
        + (f" (first {args.docs} documents)" if args.docs else "")
        + f"; {args.queries} searches and {args.asks} asks per system after {args.warmup} warm-up questions "
        f"(seed {args.seed}). Each system ran in its own process. Command: `python bench/run.py {args.command}`.",
        "",
        f"Machine: {machine['processor']}, {machine['cpus']} CPUs, Python {machine['python']}, {machine['platform']}"
        + (f", OMP_NUM_THREADS={machine['omp_num_threads']}" if machine.get("omp_num_threads") else "")
        + f"; 1-minute load average {machine['load_average_1min']['before']:.1f} before the run and "
        f"{machine['load_average_1min']['after']:.1f} after (2.0 = both cores busy)"
        + f". Taken {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "| " + " | ".join(head) + " |",
        "|---|" + "---:|" * (len(head) - 2) + "---|",
        *("| " + " | ".join(row) + " |" for row in body),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", default="all", choices=["index", "search", "all", "_child"])
    parser.add_argument(
        "--dataset", type=Path, default=DEFAULT_DATASET, help="SQuAD-style file whose contexts are the corpus"
    )
    parser.add_argument("--docs", type=int, default=0, help="only the first N documents (0 = all)")
    parser.add_argument("--queries", type=int, default=200, help="timed searches per mode")
    parser.add_argument("--asks", type=int, default=100, help="timed asks")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write bench.json and bench.md here")
    parser.add_argument("--system", choices=["ours", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--tasks", default="index", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.command == "_child":
        print(json.dumps(child(args)))
        return 0
    if not args.dataset.is_file():
        print(f"error: {args.dataset} not found", file=sys.stderr)
        return 2
    tasks = "index" if args.command == "index" else "index,search"
    load_before = os.getloadavg()[0]
    ours, naive = _run_child("ours", args, tasks), _run_child("naive", args, tasks)
    from rag.eval.runner import machine

    # Other processes on the machine slow every figure: record how busy it was.
    info = {**machine(), "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]}}
    table = _table(_rows(ours, naive))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        cells = (cell.ljust(w) if i in (0, 4) else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        print("  ".join(cells))
    print(f"machine: {info['processor']}, {info['cpus']} CPUs")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench.json").write_text(
            json.dumps({"machine": info, "ours": ours, "naive": naive, "targets": TARGETS}, indent=1) + "\n"
        )
        (args.out / "bench.md").write_text(_markdown(table, info, args))
        print(f"written {args.out}/bench.json and bench.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
