"""Index builds and warm searches, ours against a baseline revision (today's path), in the same run.

    python bench/bench_build.py                                  # CMRC + DRCD, baseline 1b0cfb8
    python bench/bench_build.py --datasets cmrc2018 --questions 500 --json docs/eval/build.json

For each dataset's corpus and each side, one fresh process (that side's code first on ``PYTHONPATH``)
builds a knowledge base with the default settings from an empty data folder, so our embedding cache
starts empty ("cold"), and reports the build's seconds and its peak RSS (the process's, read after
the build); then it answers ``--questions`` questions (all by default) in hybrid mode for hit@1 as
``rag eval`` judges it (with one OpenMP thread on both sides: the same hits, sooner when the machine is
loaded). Ours then builds the first dataset again into a new index in the same data
folder: a rebuild with the embedding model and text unchanged, served from the cache ("warm").

``--naive`` also builds the naive baseline (LangChain's splitter on raw text, FAISS, the same embedding
model: ``rag.eval.naive``) with the baseline's code, timed the same way.

Search latency: in the first dataset's processes, after a warm-up, ``--latency-questions`` hybrid
searches (k=5) are timed one by one, first as the machine is ("quiet": other jobs may be running; the
load average is printed), then while ``--busy`` processes each spin a busy loop. Sides run one after
the other, so load from other jobs does not fall on both alike; rerun for a second opinion.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"
#: Issue 14's targets on the 2-core reference machine.
TARGETS = {"build_s": 60.0, "rebuild_s": 10.0, "search_p50_ms": 12.0, "search_p95_ms": 25.0, "build_ratio": 3.0}
_BUSY = "while True: pass"


# ------------------------------------------------------------------ the worker (runs either side's code)
def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def latencies(search, questions: list[str]) -> dict[str, float]:
    for question in questions[:5]:
        search(question)
    ms = []
    for question in questions:
        started = time.perf_counter()
        search(question)
        ms.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": statistics.median(ms), "p95_ms": percentile(ms, 95), "n": len(ms)}


@contextmanager
def busy_loops(count: int):
    """``count`` processes each spinning a busy loop (started and runnable) while the block runs."""
    spinners = [subprocess.Popen([sys.executable, "-c", _BUSY]) for _ in range(count)]
    try:
        time.sleep(1.0)
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


@contextmanager
def one_thread():
    """One OpenMP thread for this thread's work in every runtime loaded (the baseline has no rag.threads)."""
    runtimes = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        path = line.rsplit(" ", 1)[-1]
        if re.search(r"/libgomp[^/]*\.so", path) and path not in {r[0] for r in runtimes}:
            library = ctypes.CDLL(path)
            runtimes.append((path, library, library.omp_get_max_threads()))
    for _, library, _ in runtimes:
        library.omp_set_num_threads(1)
    try:
        yield
    finally:
        for _, library, count in runtimes:
            library.omp_set_num_threads(count)


def worker(args: argparse.Namespace) -> None:
    from rag import KnowledgeBase, Settings
    from rag.eval.datasets import load_dataset
    from rag.eval.evaluators import RelevanceJudge, RetrievalEvaluator

    dataset = load_dataset(args.dataset)
    if args.docs:  # a smaller corpus, and the questions answered in it (a quick trial run)
        dataset.documents = dataset.documents[: args.docs]
        kept = {document.id for document in dataset.documents}
        dataset.items = [item for item in dataset.items if all(e.doc_id in kept for e in item.evidence)]
    data = dataset.sample(args.questions or None, 0)
    settings = Settings(data_dir=args.data_dir, index_dir=args.index_dir)
    if args.naive:  # the pipeline people start from: LangChain's splitter on raw text, FAISS, the same model
        from rag.embeddings import load_embeddings
        from rag.eval.naive import NaiveRetriever

        started = time.perf_counter()
        naive = NaiveRetriever(dataset.documents, load_embeddings(settings))
        print("RESULT " + json.dumps({"build_s": time.perf_counter() - started, "chunks": len(naive.chunks)}), flush=True)
        return
    started = time.perf_counter()
    knowledge = KnowledgeBase.create(settings)  # loads the embedding model: part of what a build waits for
    knowledge.add_documents(dataset.documents)
    result: dict = {
        "build_s": time.perf_counter() - started,
        "chunks": knowledge.stats().chunks,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    search = lambda question, k=5: knowledge.retriever.search(question, k=k, mode="hybrid")  # noqa: E731
    if not args.no_eval:
        evaluator = RetrievalEvaluator(data.items, RelevanceJudge(knowledge.chunks()), (1, 5), progress=False)
        with one_thread():  # the same hits, sooner on a loaded machine (threads do not change the ranking)
            metrics = evaluator(search)
        result["hit@1"] = metrics["hit@1"]
        result["questions"] = len(evaluator.rows)
    if args.latency:
        questions = [item.question for item in dataset.items[: args.latency]]
        result["load_before"] = os.getloadavg()[0]
        result["quiet"] = latencies(search, questions)
        with busy_loops(args.busy):
            result["busy"] = latencies(search, questions)
    print("RESULT " + json.dumps(result), flush=True)


# ------------------------------------------------------------------ the driver
def run_side(tree: Path, dataset: Path, data_dir: Path, index_dir: Path, args: argparse.Namespace, **extra) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--dataset", str(dataset),
               "--data-dir", str(data_dir), "--index-dir", str(index_dir), "--questions", str(args.questions),
               "--busy", str(args.busy), "--docs", str(args.docs)]
    if extra.get("latency"):
        command += ["--latency", str(args.latency_questions)]
    if extra.get("no_eval"):
        command.append("--no-eval")
    if extra.get("naive"):
        command.append("--naive")
    env = {**os.environ, "PYTHONPATH": str(tree), "RAG_DATA_DIR": str(data_dir)}
    print(f"  {tree.name}: {dataset.parent.name} {'(latency) ' if extra.get('latency') else ''}…", file=sys.stderr,
          flush=True)
    result = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"worker failed ({tree}):\n{result.stderr[-3000:]}")
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="1b0cfb8", help="git revision of today's path (default: %(default)s)")
    parser.add_argument("--datasets", nargs="+", default=["cmrc2018", "drcd"], help="names under ../shared/datasets")
    parser.add_argument("--questions", type=int, default=0, help="questions per dataset for hit@1 (0: all)")
    parser.add_argument("--docs", type=int, default=0, help="only the first N documents of each corpus (0: all)")
    parser.add_argument("--latency-questions", type=int, default=200, help="searches timed, quiet and busy")
    parser.add_argument("--busy", type=int, default=os.cpu_count() or 2, help="busy-loop processes for 'busy'")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--index-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--latency", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--no-eval", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--naive", action="store_true", help="also build the naive baseline (on the baseline's code)")
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0

    work = Path(tempfile.mkdtemp(prefix="bench-build-"))
    baseline_tree = work / "baseline"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(baseline_tree), args.baseline],
                   check=True, capture_output=True)
    sides = {"baseline": baseline_tree, "ours": ROOT}
    results: dict = {"baseline": args.baseline, "cpus": os.cpu_count(), "datasets": {}}
    try:
        for number, name in enumerate(args.datasets):
            dataset = DATASETS / name / "dev.json"
            figures = results["datasets"][name] = {}
            for side, tree in sides.items():
                base = work / f"{side}-{name}"
                figures[side] = run_side(tree, dataset, base / "data", base / "index", args, latency=number == 0)
            if number == 0:
                base = work / f"ours-{name}"
                figures["ours_rebuild"] = run_side(ROOT, dataset, base / "data", base / "index2", args, no_eval=True)
            if args.naive:
                base = work / f"naive-{name}"
                figures["naive"] = run_side(baseline_tree, dataset, base / "data", base / "index", args, naive=True)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(baseline_tree)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)

    revision = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    results["ours"] = revision.stdout.strip()
    results["load_average_end"] = os.getloadavg()[0]
    print(f"\nIndex builds, ours = {results['ours']} (+ uncommitted changes, if any) against {args.baseline}; "
          f"{os.cpu_count()} CPUs; load average now {results['load_average_end']:.1f}\n")
    print("| dataset | chunks | build s: baseline | ours, cold | ours, cached | cold ratio | cached ratio "
          "| peak RSS MiB: baseline | ours | hit@1: baseline | ours |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, figures in results["datasets"].items():
        base, ours, warm = figures["baseline"], figures["ours"], figures.get("ours_rebuild")
        ratio = base["build_s"] / ours["build_s"]
        warm_cells = f"{warm['build_s']:.1f} | | {base['build_s'] / warm['build_s']:.0f}×" if warm else "– | | –"
        warm_cells = warm_cells.replace(" | | ", f" | {ratio:.2f}× | ")
        print(f"| {name} | {ours['chunks']} | {base['build_s']:.1f} | {ours['build_s']:.1f} | {warm_cells} "
              f"| {base['peak_rss_mib']:.0f} | {ours['peak_rss_mib']:.0f} "
              f"| {base['hit@1']:.4f} | {ours['hit@1']:.4f} |")
    for name, figures in results["datasets"].items():
        if "naive" in figures:
            naive = figures["naive"]["build_s"]
            print(f"\nNaive baseline ({name}, {figures['naive']['chunks']} chunks of raw text): {naive:.1f} s; ours, "
                  f"cold, {naive / figures['ours']['build_s']:.1f}× faster (target ≥ 6×)")
    first = results["datasets"][args.datasets[0]]
    print(f"\nWarm hybrid search, {args.datasets[0]} ({args.latency_questions} questions, k=5); busy = "
          f"{args.busy} busy-loop processes; load average before: baseline {first['baseline']['load_before']:.1f},"
          f" ours {first['ours']['load_before']:.1f}\n")
    print("| side | quiet p50 ms | quiet p95 ms | busy p50 ms | busy p95 ms |")
    print("|---|---:|---:|---:|---:|")
    for side in ("baseline", "ours"):
        quiet, busy = first[side]["quiet"], first[side]["busy"]
        print(f"| {side} | {quiet['p50_ms']:.1f} | {quiet['p95_ms']:.1f} | {busy['p50_ms']:.1f} | {busy['p95_ms']:.1f} |")
    print(f"\nTargets: build ≤ {TARGETS['build_s']:.0f} s and ≥ {TARGETS['build_ratio']:.0f}× baseline; rebuild ≤ "
          f"{TARGETS['rebuild_s']:.0f} s; search p50 ≤ {TARGETS['search_p50_ms']:.0f} ms, p95 ≤ "
          f"{TARGETS['search_p95_ms']:.0f} ms (quiet and busy); hit@1 within 0.003 of baseline; peak RSS ≤ baseline.")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
