"""Load test of one served instance (page and API): many users asking at once, then asking while files are
uploaded and deleted, then 50 API clients alongside 10 page users.

    python bench/bench_load.py                          # 50 users × 60 s, twice, then API + page 60 s (see below)
    python bench/bench_load.py --users 20 --seconds 20 --uploads 4
    python bench/bench_load.py --phases api+page --seconds 20   # only the API clients with the page users
    python bench/bench_load.py --repeat 4               # phase 2 four times: does memory level off?
    python bench/bench_load.py --url http://127.0.0.1:7860/ --pid 1234   # against a running app (it is changed!)

Without ``--url`` it starts ``app.py`` on a free loopback port over a temporary copy of
``--index-dir`` (default: indexes/default), so uploads never touch the real index.

1. warm-up: every seed question (examples/seeds_qa.jsonl) once through ``/chat`` with nobody else
   asking; these answers are the reference for "changed" below. Server RSS is read after it.
2. phase "ask": ``--users`` users, each with its own Gradio session, ask seed questions through
   ``/chat`` one after another for ``--seconds`` (a new conversation every ``--turns`` questions).
3. phase "ask+upload": the same, while one more client uploads ``--uploads`` generated Chinese news
   files (.txt/.md) through ``/upload``, checks each is answerable through ``/ask``, and deletes it
   again through ``/delete`` (``--repeat`` runs this phase several times).
4. phase "api+page": ``--api-clients`` callers of the OpenAI-compatible API (the official ``openai``
   client, ``/v1/chat/completions``, every other one streaming) ask seed questions one after another
   for ``--seconds`` while ``--api-users`` page users ask through ``/chat``; the API's answers are
   compared with its own idle answers (taken before the phase). Reported as two rows, "api+page:
   API" and "api+page: page", with the server's RSS before and after the phase.

Per phase: questions served, errors (count and first examples), answers that differ from the idle
answer ("changed": a race between answering and indexing would show there), latency p50/p95/max
per question (queueing included), upload and delete durations and outcomes, and the server's RSS
(process and children, /proc/<pid>/status VmRSS) before and after. The run fails (exit status 1)
on any error, on a failed upload or delete, on RSS growth beyond ``--bound-mb`` from after the
warm-up to the end, and (with ``--repeat 3`` or more) when the last phase still grows by more than
``--level-mb``: memory that does not level off is a leak.

The default bound, 250 MB: the default run grew by 137-182 MB (2 cores; ~2 500 questions in ~550
sessions, 6 uploads), and memory levelled off at +218 MB with ``--repeat 4`` (~6 000 questions,
1 250 sessions, 30 uploads; the last two phases grew by 4 and 9 MB). It is Gradio's state per
session (~85 KB, kept for at most app.SESSION_CAPACITY = 1 000 sessions, so ≤ ~85 MB) plus the
working memory of 50 concurrent users and of indexing uploads, which the allocator keeps once it
has been needed. Uploading and deleting the same files again adds nothing (measured over 30 cycles).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the load driver is shared with tests/test_load.py

from load_driver import (  # noqa: E402
    ApiClients,
    PhaseReport,
    Users,
    api_baseline,
    baseline,
    library_work,
    news_files,
    together,
)
from support import app_process, rss_mb  # noqa: E402

SEED_QA = ROOT / "examples" / "seeds_qa.jsonl"


def run(args: argparse.Namespace, url: str, pid: int | None, work: Path) -> dict:
    rows = [json.loads(line) for line in SEED_QA.read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = [row["question"] for row in rows]
    rss = (lambda: rss_mb(pid)) if pid else (lambda: None)

    began = time.monotonic()
    expected = baseline(url, questions, args.key)
    rss_warm = rss()
    warm = {
        "questions": len(expected),
        "seconds": round(time.monotonic() - began, 1),
        "rss_mb": rss_warm and round(rss_warm, 1),
    }
    phases = []
    wanted = set(args.phases.split(","))
    if wanted & {"ask", "ask+upload"}:
        users = Users(url, args.users, questions, turns=args.turns, key=args.key)
        files = news_files(work, args.uploads, args.paragraphs) if "ask+upload" in wanted else []
        plan = [("ask", None)] if "ask" in wanted else []
        plan += [
            (f"ask+upload{f' #{i + 1}' if args.repeat > 1 else ''}", library_work(url, files, len(files), args.key))
            for i in range(args.repeat if files else 0)
        ]
        for name, during in plan:
            phase = PhaseReport(name, args.users, args.seconds, rss_before_mb=rss())
            users.run(phase, expected, during=during)
            phase.rss_after_mb = rss()
            phases.append(phase)
            print(phase.summary(), flush=True)
    if "api+page" in wanted:
        api_expected = api_baseline(url, questions, args.key)
        page = Users(url, args.api_users, questions, turns=args.turns, key=args.key)
        api = ApiClients(url, args.api_clients, questions, key=args.key)
        before = rss()
        api_phase = PhaseReport("api+page: API", args.api_clients, args.seconds, rss_before_mb=before)
        page_phase = PhaseReport("api+page: page", args.api_users, args.seconds, rss_before_mb=before)
        together(lambda: api.run(api_phase, api_expected), lambda: page.run(page_phase, expected))
        api_phase.rss_after_mb = page_phase.rss_after_mb = rss()
        phases += [api_phase, page_phase]
        print(api_phase.summary(), flush=True)
        print(page_phase.summary(), flush=True)

    report = {
        "url": url,
        "warm_up": warm,
        "phases": [phase.to_dict() for phase in phases],
        "bound_mb": args.bound_mb,
    }
    if pid:
        report["rss_growth_mb"] = round(phases[-1].rss_after_mb - rss_warm, 1)
    return report


def checks(report: dict, args: argparse.Namespace) -> list[tuple[bool, str]]:
    """(passed, what) for each thing the run must show."""
    phases = report["phases"]
    errors = sum(p["errors"] for p in phases)
    ops = [op for p in phases for op in p["library"]]
    failed_ops = [f"{op['kind']} {op['name']}" for op in ops if not op["ok"]]
    results = [
        (errors == 0, f"errors: {errors} of {sum(p['asked'] for p in phases)} questions"),
        (
            not failed_ops,
            f"uploads and deletes: {len(ops) - len(failed_ops)} of {len(ops)} ok"
            + (f", failed: {', '.join(failed_ops)}" if failed_ops else ""),
        ),
    ]
    if "rss_growth_mb" in report:
        growth = report["rss_growth_mb"]
        results.append(
            (growth <= args.bound_mb, f"RSS growth over the run: {growth:+} MB (bound {args.bound_mb:g} MB)")
        )
        if args.repeat >= 3:
            last = phases[-1]["rss_growth_mb"]
            results.append(
                (last <= args.level_mb, f"RSS growth in the last phase: {last:+} MB (≤ {args.level_mb:g} MB)")
            )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running app; default: start app.py on a free loopback port")
    parser.add_argument("--pid", type=int, help="with --url: the app's process id, to read its memory")
    parser.add_argument("--index-dir", type=Path, default=ROOT / "indexes" / "default", help="index to copy")
    parser.add_argument("--concurrency-limit", type=int, help="the started app's --concurrency-limit")
    parser.add_argument("--phases", default="ask,ask+upload,api+page", help="which phases to run (comma-separated)")
    parser.add_argument("--users", type=int, default=50, help="page users in phases ask and ask+upload")
    parser.add_argument("--api-clients", type=int, default=50, help="API callers in phase api+page")
    parser.add_argument("--api-users", type=int, default=10, help="page users alongside them in phase api+page")
    parser.add_argument("--key", help="an API key, when the server has RAG_API_KEYS (page and API accept it)")
    parser.add_argument("--seconds", type=float, default=60, help="length of each phase")
    parser.add_argument("--uploads", type=int, default=6, help="files uploaded (and deleted) in phase 2; 0: skip it")
    parser.add_argument("--paragraphs", type=int, default=80, help="paragraphs per uploaded file")
    parser.add_argument("--repeat", type=int, default=1, help="run phase 2 this many times (does memory level off?)")
    parser.add_argument("--turns", type=int, default=5, help="questions per conversation")
    parser.add_argument("--bound-mb", type=float, default=250, help="allowed RSS growth over the whole run")
    parser.add_argument("--level-mb", type=float, default=30, help="allowed RSS growth in the last of 3+ phase 2s")
    parser.add_argument("--json", action="store_true", help="also print the report as JSON")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench_load_"))
    try:
        if args.url:
            report = run(args, args.url, args.pid, work)
        else:
            command = []
            if args.index_dir.exists():
                shutil.copytree(args.index_dir, work / "index")
            else:
                print(f"{args.index_dir} does not exist: the app builds the index first", flush=True)
            command += ["--index-dir", str(work / "index")]
            if args.concurrency_limit:
                command += ["--concurrency-limit", str(args.concurrency_limit)]
            with app_process(command, log=work / "app.log", timeout=900) as app:
                report = run(args, app.url, app.pid, work)
                report["app_log_tail"] = app.log_tail(2000)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
    warm = report["warm_up"]
    print(f"warm-up: {warm['questions']} questions in {warm['seconds']} s; server RSS {warm['rss_mb'] or '?'} MB")
    results = checks(report, args)
    for passed, what in results:
        print(f"{'ok    ' if passed else 'FAILED'} {what}")
    if not all(passed for passed, _ in results):
        if "app_log_tail" in report:
            print(f"app.py log (end):\n{report['app_log_tail']}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
