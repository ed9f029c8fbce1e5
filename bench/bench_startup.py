"""Start-up as a person waits for it: each command in a fresh process, ours against a baseline revision.

    python bench/bench_startup.py                    # baseline: cac2d6d (before the start-up work), 5 runs each
    python bench/bench_startup.py --baseline HEAD~3 --runs 9 --work /tmp/startup   # keep the indexes for next time
    python bench/bench_startup.py --page-corpus seeds/000_7eb0358025d090fe.txt     # a shorter first build

Commands: ``import rag``, ``from rag import Assistant``, ``rag --help``, ``rag search`` (BM25 and hybrid)
over an index of seeds/. Every figure is the median wall time of ``--runs`` fresh interpreters (after
one untimed run, so both sides have their bytecode and jieba caches); ours and the baseline's runs
alternate, so load from other jobs falls on both alike. The baseline is checked out with ``git worktree
add`` into a temp dir and run with the same interpreter and packages; each side searches an index it
built itself (``rag index``), so a change of index format does not favour either.

The page: ``python app.py`` on a fresh clone, that is with no index yet (``--index-dir`` a new
folder, the corpus ``--page-corpus``, default seeds/), ours against ``--page-baseline`` (the page
before it answered at once). Two figures, each the median of ``--page-runs`` fresh starts, sides
alternating: seconds until ``GET /`` first answers 200, and until the page's ``/ask`` first answers a
question (the build done). ``--page-runs 0`` skips it.
"""

from __future__ import annotations

import argparse
import json
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


def page_seconds(tree: Path, index_dir: Path, corpus: Path, log: Path) -> tuple[float, float]:
    """Seconds from starting ``python app.py`` with no index until GET / answers 200, and until /ask answers."""
    import httpx
    from gradio_client import Client

    sys.path.insert(0, str(ROOT / "tests"))
    from support import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**environment(tree), "RAG_CORPUS": json.dumps([str(corpus)])}
    command = [sys.executable, "app.py", "--index-dir", str(index_dir), "--port", str(port)]
    started = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        first = None
        while first is None:
            if process.poll() is not None:
                raise SystemExit(f"app.py ended (status {process.returncode}) in {tree}; see {log}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    first = time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        client = Client(url, verbose=False)
        while True:
            try:
                if client.predict(QUESTION, api_name="/ask")["text"]:
                    return first, time.perf_counter() - started
            except Exception:  # the page says it is still building: ask again
                if process.poll() is not None:
                    raise SystemExit(f"app.py ended (status {process.returncode}) in {tree}; see {log}") from None
            time.sleep(0.2)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def checkout(revision: str, where: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), revision], check=True,
                   capture_output=True)
    return where


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="cac2d6d", help="git revision to compare with (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command and side (0: only the page)")
    parser.add_argument("--work", type=Path, help="keep the indexes here and reuse them (default: a temp dir)")
    parser.add_argument("--page-baseline", default="08a8e7e", help="revision for the page's start (default: %(default)s)")
    parser.add_argument("--page-runs", type=int, default=1, help="fresh page starts per side (0: skip)")
    parser.add_argument("--page-corpus", type=Path, default=ROOT / "seeds", help="what the first build indexes")
    args = parser.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-startup-"))
    work.mkdir(parents=True, exist_ok=True)
    baseline_tree = work / "baseline"
    page_tree = work / "page-baseline"
    page_times: dict[str, list[tuple[float, float]]] = {"ours": [], "baseline": []}
    try:
        if args.page_runs:
            checkout(args.page_baseline, page_tree)
            page_sides = {"ours": ROOT, "baseline": page_tree}
            for run in range(args.page_runs):
                for side, tree in page_sides.items():
                    index_dir = work / f"page-{side}-{run}"
                    shutil.rmtree(index_dir, ignore_errors=True)
                    log = work / f"page-{side}.log"
                    page_times[side].append(page_seconds(tree, index_dir, args.page_corpus.resolve(), log))
        times: dict[str, dict[str, list[float]]] = {"ours": {}, "baseline": {}}
        if args.runs:
            checkout(args.baseline, baseline_tree)
            sides = {"ours": (ROOT, work / "ours-index"), "baseline": (baseline_tree, work / "baseline-index")}
            for tree, index_dir in sides.values():
                build_index(tree, index_dir)
            for side, (tree, index_dir) in sides.items():  # untimed: bytecode, jieba's cache, the OS's file cache
                for args_ in commands(index_dir).values():
                    seconds(args_, tree)
            for _ in range(args.runs):
                for side, (tree, index_dir) in sides.items():
                    for name, args_ in commands(index_dir).items():
                        times[side].setdefault(name, []).append(seconds(args_, tree))
    finally:
        for tree in (baseline_tree, page_tree):
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)

    revision = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    print(f"Cold start (s); ours = {revision.stdout.strip() or 'working tree'} (+ uncommitted changes, if any);"
          f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    if args.runs:
        print()
        print(f"Median of {args.runs} fresh processes; baseline = {args.baseline}")
        print()
        print("| command | ours | baseline | ours / baseline | target |")
        print("|---|---:|---:|---:|---:|")
    for name in times["ours"]:
        ours, base = statistics.median(times["ours"][name]), statistics.median(times["baseline"][name])
        target = f"≤ {TARGETS[name]:g}" if name in TARGETS else ""
        print(f"| `{name}` | {ours:.2f} | {base:.2f} | {ours / base:.2f} | {target} |")
    if args.page_runs:
        print()
        print(f"First `python app.py` with no index (corpus {args.page_corpus}), median of {args.page_runs} start(s) (s);"
              f" baseline = {args.page_baseline}")
        print()
        print("| page | ours | baseline | ours / baseline | target |")
        print("|---|---:|---:|---:|---:|")
        for i, (name, target) in enumerate([("first HTTP 200 on /", "≤ 5"), ("first answer from /ask", "")]):
            ours = statistics.median(t[i] for t in page_times["ours"])
            base = statistics.median(t[i] for t in page_times["baseline"])
            print(f"| {name} | {ours:.2f} | {base:.2f} | {ours / base:.2f} | {target} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
