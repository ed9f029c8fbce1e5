"""Start-up as a person waits for it: each command in a fresh process, ours against a baseline revision.

    python bench/bench_startup.py                    # baseline: cac2d6d (before the start-up work), 5 runs each
    python bench/bench_startup.py --baseline HEAD~3 --runs 9 --work /tmp/startup   # keep the indexes for next time

Commands: ``import rag``, ``from rag import Assistant``, ``rag --help``, ``rag search`` (BM25 and hybrid)
over an index of seeds/. Every figure is the median wall time of ``--runs`` fresh interpreters (after
one untimed run, so both sides have their bytecode and jieba caches); ours and the baseline's runs
alternate, so load from other jobs falls on both alike. The baseline is checked out with ``git worktree
add`` into a temp dir and run with the same interpreter and packages; each side searches an index it
built itself (``rag index``), so a change of index format does not favour either.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "黑龙江的边境线有多长？"
#: Issue 14's targets on the 2-core reference machine (seconds).
TARGETS = {"rag --help": 0.5, "rag search (bm25)": 1.0, "rag search (hybrid)": 1.5, "from rag import Assistant": 0.8}


def commands(index_dir: Path) -> dict[str, list[str]]:
    search = ["-m", "rag", "search", QUESTION, "-k", "5", "--index-dir", str(index_dir)]
    return {
        "import rag": ["-c", "import rag"],
        "from rag import Assistant": ["-c", "from rag import Assistant"],
        "rag --help": ["-m", "rag", "--help"],
        "rag search (bm25)": [*search, "--mode", "bm25"],
        "rag search (hybrid)": [*search, "--mode", "hybrid"],
    }


def environment(tree: Path) -> dict[str, str]:
    """Run ``tree``'s code: it comes first on the path, before the installed (editable) package."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def seconds(args: list[str], tree: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, *args], cwd=tree, env=environment(tree), capture_output=True, text=True)
    took = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"failed in {tree}: {' '.join(args)}\n{result.stderr[-2000:]}")
    return took


def build_index(tree: Path, index_dir: Path) -> None:
    if (index_dir / "CURRENT").is_file():
        return
    print(f"building the seeds index for {tree} …", file=sys.stderr, flush=True)
    index = [sys.executable, "-m", "rag", "index", str(tree / "seeds"), "--index-dir", str(index_dir)]
    subprocess.run(index, cwd=tree, env=environment(tree), check=True, capture_output=True)


def checkout(revision: str, where: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), revision], check=True,
                   capture_output=True)
    return where


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="cac2d6d", help="git revision to compare with (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command and side")
    parser.add_argument("--work", type=Path, help="keep the indexes here and reuse them (default: a temp dir)")
    args = parser.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-startup-"))
    work.mkdir(parents=True, exist_ok=True)
    baseline_tree = work / "baseline"
    try:
        checkout(args.baseline, baseline_tree)
        sides = {"ours": (ROOT, work / "ours-index"), "baseline": (baseline_tree, work / "baseline-index")}
        for tree, index_dir in sides.values():
            build_index(tree, index_dir)
        times: dict[str, dict[str, list[float]]] = {side: {} for side in sides}
        for side, (tree, index_dir) in sides.items():  # untimed: bytecode, jieba's cache, the OS's file cache
            for args_ in commands(index_dir).values():
                seconds(args_, tree)
        for _ in range(args.runs):
            for side, (tree, index_dir) in sides.items():
                for name, args_ in commands(index_dir).items():
                    times[side].setdefault(name, []).append(seconds(args_, tree))
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(baseline_tree)],
                       capture_output=True)
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)

    revision = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    print(f"Cold start, median of {args.runs} fresh processes (s); ours = {revision.stdout.strip() or 'working tree'}"
          f" (+ uncommitted changes, if any), baseline = {args.baseline}; {os.cpu_count()} CPUs,"
          f" load average {os.getloadavg()[0]:.1f}")
    print()
    print("| command | ours | baseline | ours / baseline | target |")
    print("|---|---:|---:|---:|---:|")
    for name in times["ours"]:
        ours, base = statistics.median(times["ours"][name]), statistics.median(times["baseline"][name])
        target = f"≤ {TARGETS[name]:g}" if name in TARGETS else ""
        print(f"| `{name}` | {ours:.2f} | {base:.2f} | {ours / base:.2f} | {target} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
