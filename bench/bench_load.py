"""Load test of the chat page: N users ask at the same moment, each over its own Gradio session.

    python bench/bench_load.py                         # starts app.py on a free port, 20 users, 1 question each
    python bench/bench_load.py --users 20 --rounds 3   # each user asks 3 questions in a row (a conversation)
    python bench/bench_load.py --url http://127.0.0.1:7860/   # against a running app

Every user calls the page's own ``/chat`` endpoint (the same streaming handler the browser uses)
with seed questions from examples/seeds_qa.jsonl. An answer counts as served when the page shows
an answer or a refusal; anything else (an exception, the error message) counts as an error.
Reports served, errors, latency p50/p95/max per question and the wall time of the whole run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from gradio_client import Client

from rag.eval.metrics import percentile

ROOT = Path(__file__).resolve().parent.parent
SEED_QA = ROOT / "examples" / "seeds_qa.jsonl"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with status {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"app.py did not open port {port} within {timeout:.0f} s")


def start_app(index_dir: str | None, concurrency: int | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, str(ROOT / "app.py"), "--port", str(port)]
    if index_dir:
        command += ["--index-dir", index_dir]
    if concurrency:
        command += ["--concurrency-limit", str(concurrency)]
    log = tempfile.NamedTemporaryFile("w+", prefix="bench_load_app_", suffix=".log", delete=False)
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, timeout=600)
    except Exception:
        process.terminate()
        print(Path(log.name).read_text(encoding="utf-8")[-3000:], file=sys.stderr)
        raise
    return process, f"http://127.0.0.1:{port}/"


def user(url: str, questions: list[str], start: threading.Barrier, results: list[dict]) -> None:
    try:
        client = Client(url, verbose=False)
    except Exception as error:  # a refused connection is an error of the run, not of the bench
        results.append({"ok": False, "seconds": None, "error": f"connect: {error!r}"})
        return
    start.wait()
    for question in questions:
        began = time.perf_counter()
        try:
            html, _ = client.predict(question, api_name="/chat")
            ok = "rag-answer" in html and "rag-error" not in html
            results.append({"ok": ok, "seconds": time.perf_counter() - began, "error": None if ok else "error shown"})
        except Exception as error:
            results.append({"ok": False, "seconds": time.perf_counter() - began, "error": repr(error)})


def run(url: str, users: int, rounds: int, seed: int) -> dict:
    rows = [json.loads(line) for line in SEED_QA.read_text(encoding="utf-8").splitlines() if line.strip()]
    pool = [row["question"] for row in rows]
    rng = random.Random(seed)
    results: list[dict] = []
    start = threading.Barrier(users + 1)
    threads = [
        threading.Thread(target=user, args=(url, rng.sample(pool, rounds), start, results)) for _ in range(users)
    ]
    for thread in threads:
        thread.start()
    start.wait(timeout=300)
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    seconds = [r["seconds"] for r in results if r["ok"]]
    errors = [r["error"] for r in results if not r["ok"]]
    return {
        "url": url,
        "users": users,
        "questions": users * rounds,
        "served": len(seconds),
        "errors": len(errors),
        "error_samples": errors[:5],
        "p50_s": round(percentile(seconds, 50), 3) if seconds else None,
        "p95_s": round(percentile(seconds, 95), 3) if seconds else None,
        "max_s": round(max(seconds), 3) if seconds else None,
        "wall_s": round(wall, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running app; default: start app.py on a free loopback port")
    parser.add_argument("--index-dir", help="index for the started app (default: RAG_INDEX_DIR / indexes/default)")
    parser.add_argument("--concurrency-limit", type=int, help="the started app's queue concurrency limit")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1, help="questions per user, asked one after another")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)

    process = None
    url = args.url
    if url is None:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        process, url = start_app(args.index_dir, args.concurrency_limit)
    try:
        report = run(url, args.users, args.rounds, args.seed)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        print(
            f"{report['users']} users, {report['questions']} questions against {report['url']}: "
            f"served {report['served']}, errors {report['errors']}; "
            f"latency p50 {report['p50_s']} s, p95 {report['p95_s']} s, max {report['max_s']} s; "
            f"wall {report['wall_s']} s"
        )
        for sample in report["error_samples"]:
            print(f"  error: {sample}")
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
