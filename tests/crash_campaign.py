"""SIGKILL campaign against `rag add` and `rag remove`: the killer, the phase it hit, and the index checks.

Shared by tests/test_crash_safety.py (a short campaign in CI) and bench/bench_crash.py (the long one).

One uninterrupted run of each command is timed first; its timeline, seen from outside (the progress
bar on stderr, the staging directory, the renamed version directory, the new CURRENT, the old version
gone, the exit), splits it into phases. Each later run is aimed at one phase, taken in turn, and killed
at a seeded-random point of that phase's measured span: counted from the start of the process for
start-up and embedding (chunking included), from the event that opens the phase for the later ones:
writing, swapping and pruning last milliseconds, which start-up jitter would otherwise never hit. The phase
actually hit is read from what the kill left on disk. Then the index is opened as a user would and
checked: the old or the new document set, never a mix, parts consistent with each other, search and
answers working; and a `rag add` or `rag remove` that completes or undoes the command (run in-process
to spare a start-up) must succeed and leave no debris behind.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rag import Assistant, KnowledgeBase, Settings
from rag.cli import main
from rag.embeddings import DenseEmbeddings
from rag.ingest import load_file
from rag.store import Index, read_manifest

ROOT = Path(__file__).resolve().parent.parent
#: A seeds question and its answer: the base index (the seeds) must answer it in every state.
QUESTION, ANSWER = "黑龍江的邊境線有多長？", "2981公里"
PHASES = {
    "add": ("startup", "embedding", "writing", "swapping", "pruning", "exiting"),
    "remove": ("startup", "writing", "swapping", "pruning", "exiting"),
}
#: The timeline event each phase starts at ("start": the process started).
_OPENS = {
    "startup": "start",
    "embedding": "progress",
    "writing": "tmp",
    "swapping": "renamed",
    "pruning": "swapped",
    "exiting": "pruned",
}
_EVENTS = ("start", "progress", "tmp", "renamed", "swapped", "pruned", "exit")
_RUN_TIMEOUT = 300.0


class CrashCheckError(AssertionError):
    """The index was not whole after a kill, or a later write failed."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise CrashCheckError(message)


# ---------------------------------------------------------------------------- documents added and removed
_SUBJECTS = {
    "翡翠水母": ("翡翠水母观测站在舟山启用", "舟山", "海洋研究所"),
    "琥珀飞艇": ("琥珀飞艇航线试运行", "敦煌", "民航管理局"),
}


def write_documents(folder: Path) -> list[Path]:
    """Two generated news files (two chunks each) whose marker words appear nowhere else."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, (marker, (headline, city, agency)) in enumerate(_SUBJECTS.items()):
        sentences = [
            f"{marker}项目第{n}阶段在{city}完成，{agency}记录了{n * 13 + 7}组数据，"
            f"参与的{n * 3 + 2}支团队表示{marker}的进展超出预期，下一步将在{city}周边扩大试点范围。"
            for n in range(1, 9)
        ]
        path = folder / f"extra_{number}.txt"
        path.write_text(f"{headline}\n\n" + "".join(sentences) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def _marker(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return next(marker for marker in _SUBJECTS if marker in text)


# ---------------------------------------------------------------------------- one run, watched and maybe killed
@dataclass(frozen=True)
class Aim:
    phase: str
    anchor: str  # a timeline event
    offset: float  # seconds after it


@dataclass
class Run:
    killed: bool
    returncode: int
    seconds: float  # from the start to the kill or the exit
    events: dict[str, float]  # first time (s) each timeline event was seen
    stderr: str


def _pointer(index_dir: Path) -> bytes:
    return (index_dir / "CURRENT").read_bytes()


def _observe(index_dir: Path, before: bytes, old: str, events: dict[str, float], now: float) -> None:
    names = os.listdir(index_dir)
    if any(name.startswith(".tmp-") for name in names):
        events.setdefault("tmp", now)
    if any(name.startswith("v") and name != old for name in names):
        events.setdefault("renamed", now)
    if "swapped" not in events and _pointer(index_dir) != before:
        events["swapped"] = now
    if "swapped" in events and old not in names:
        events.setdefault("pruned", now)


def _anchor(events: dict[str, float], event: str) -> float | None:
    """When ``event`` was seen, or the first later event if polling missed it."""
    return next((events[e] for e in _EVENTS[_EVENTS.index(event) :] if e in events), None)


def run_rag(index_dir: Path, args: list[str], aim: Aim | None = None) -> Run:
    """``python -m rag ARGS --index-dir INDEX_DIR``, SIGKILLed at ``aim`` (None: left to finish)."""
    before = _pointer(index_dir)
    old = before.split()[0].decode()
    command = [sys.executable, "-m", "rag", *args, "--index-dir", str(index_dir)]
    # Every run embeds as a first add does: with the embedding cache, the re-runs after a kill would skip
    # the embedding phase that the reference run timed (and the kills aimed into it would land later).
    environment = {**os.environ, "RAG_EMBEDDING_CACHE_MB": "0"}
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    start = time.monotonic()
    events: dict[str, float] = {"start": 0.0}
    stderr: list[bytes] = []

    def drain() -> None:  # the progress bar marks the end of start-up; reading also keeps the pipe from filling
        assert process.stderr is not None
        for data in iter(lambda: process.stderr.read1(65536), b""):
            stderr.append(data)
            if "progress" not in events and (b"chunking" in data or b"embedding" in data):
                events["progress"] = time.monotonic() - start

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    signalled = None
    while process.poll() is None:
        now = time.monotonic() - start
        _observe(index_dir, before, old, events, now)
        if aim is not None:
            opened = _anchor(events, aim.anchor)
            if opened is not None and now >= opened + aim.offset:
                process.send_signal(signal.SIGKILL)
                signalled = now
                break
        if now > _RUN_TIMEOUT:
            process.kill()
            raise CrashCheckError(f"`rag {' '.join(args)}` did not finish in {_RUN_TIMEOUT:.0f} s")
        if not ("tmp" in events or "renamed" in events) or "pruned" in events:
            time.sleep(0.001)  # poll busily only through the few milliseconds of publishing
    returncode = process.wait()
    seconds = time.monotonic() - start if signalled is None else signalled
    events.setdefault("exit", seconds)
    reader.join(5)
    killed = returncode == -signal.SIGKILL  # the process may have exited just before the signal
    return Run(killed, returncode, seconds, events, b"".join(stderr).decode("utf-8", "replace"))


def phase_hit(index_dir: Path, before: bytes, run: Run, reference: Run) -> str:
    """The phase a killed run was in, from what it left on disk; before publishing, from its progress bar
    or else the reference timeline."""
    if not run.killed:
        return "completed"
    names = set(os.listdir(index_dir))
    old = before.split()[0].decode()
    if _pointer(index_dir) != before:
        return "pruning" if old in names else "exiting"
    if any(name.startswith(".tmp-") for name in names):
        return "writing"
    if "CURRENT.tmp" in names or any(name.startswith("v") and name != old for name in names):
        return "swapping"
    if "progress" in run.events:  # its progress bar was printed (only when two or more files are new)
        return "embedding"
    progress = reference.events.get("progress")
    return "embedding" if progress is not None and run.seconds >= progress else "startup"


def aim_at(phase: str, reference: Run, rng: random.Random) -> Aim:
    """A random point of ``phase`` as it lasted in the reference run.

    Start-up and embedding last long enough to be aimed at from the start of the process (a run adding
    one file prints no progress bar to anchor on); the short phases after them are aimed at from the
    event that opens them, seen in the run itself. Embedding is aimed into the first half of its
    reference length: a run that embeds faster than the reference (warm page cache, a quieter moment)
    would otherwise often be past it, in writing, when the kill comes."""
    opens = _OPENS[phase]
    opened = _anchor(reference.events, opens)
    assert opened is not None  # every timeline ends with "exit"
    closed = min(t for e, t in reference.events.items() if _EVENTS.index(e) > _EVENTS.index(opens))
    if phase == "startup":
        return Aim(phase, "start", rng.uniform(opened, closed))
    if phase == "embedding":
        return Aim(phase, "start", rng.uniform(opened, (opened + closed) / 2))
    return Aim(phase, opens, rng.uniform(0.0, max(closed - opened, 0.0003)))


# ---------------------------------------------------------------------------- checks
def check_index(
    path: Path, settings: Settings, embeddings: DenseEmbeddings, states: dict[str, frozenset[str]], markers: dict[str, str]
) -> str:
    """Open the index as a user would and check it is whole; the name of the state in ``states`` it holds.

    ``markers`` maps document ids that may or may not be present to words found only in them."""
    index = Index.open(path, settings, embeddings)
    snapshot = index.snapshot
    ids = frozenset(snapshot.documents)
    state = next((name for name, expected in states.items() if ids == expected), None)
    if state is None:
        raise CrashCheckError(f"the documents are a mix, none of {states}: {sorted(ids)}")
    rows = len(snapshot.chunks)
    _require(
        rows == len(snapshot.keys) == len(snapshot.vectors) == len(snapshot.lexical),
        f"{rows} chunks, {len(snapshot.keys)} keys, {len(snapshot.vectors)} vectors, {len(snapshot.lexical)} BM25 rows",
    )
    chunk_ids = [chunk.id for chunk in snapshot.chunks]
    listed = [chunk_id for record in snapshot.documents.values() for chunk_id in record.chunk_ids]
    _require(sorted(chunk_ids) == sorted(listed), "the documents' chunk lists do not match the chunks")
    _require(all(chunk.doc_id in ids for chunk in snapshot.chunks), "a chunk belongs to no document")
    keys = {int(key) for key in snapshot.keys}
    found, _ = snapshot.vectors.search(embeddings.embed_queries([QUESTION])[0], len(snapshot.vectors))
    _require(len(keys) == rows and {int(key) for key in found} == keys, "the vectors' keys are not the chunks' keys")
    manifest, _ = read_manifest(path)
    _require(
        manifest["counts"] == {"documents": len(ids), "chunks": rows},
        f"the manifest counts {manifest['counts']}",
    )
    knowledge = KnowledgeBase(index, settings)
    for doc_id, marker in markers.items():
        hits = knowledge.search(marker, k=3, mode="bm25")
        if doc_id in ids:
            _require(bool(hits) and hits[0].chunk.doc_id == doc_id, f"BM25 does not find {marker} in {doc_id}")
        else:
            _require(all(marker not in hit.chunk.text for hit in hits), f"BM25 finds removed {marker}")
    answer = Assistant(knowledge, settings).ask(QUESTION)
    _require(not answer.refused and ANSWER in answer.text and bool(answer.citations), f"bad answer: {answer.text!r}")
    return state


def check_clean(path: Path) -> None:
    """After a successful write only the lock, CURRENT, the version it names and that version's segments are left."""
    expected = {".lock", "CURRENT", "segments", _pointer(path).split()[0].decode()}
    left = set(os.listdir(path))
    _require(left == expected, f"left behind after a successful write: {sorted(left - expected)}")
    listed = {segment["name"] for segment in read_manifest(path)[0]["segments"]}
    segments = set(os.listdir(path / "segments"))
    _require(segments == listed, f"segments left behind after a successful write: {sorted(segments - listed)}")


# ---------------------------------------------------------------------------- the campaign
@dataclass
class Summary:
    kills: Counter[tuple[str, str]] = field(default_factory=Counter)  # (command, phase hit) -> kills
    survived: int = 0  # kills after which every check passed
    completed: int = 0  # runs that finished before their kill came
    failures: list[str] = field(default_factory=list)
    reference: dict[str, Run] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.kills.values())

    def report(self) -> str:
        lines = []
        for command, run in self.reference.items():
            timeline = ", ".join(f"{e} {run.events[e]:.3f}" for e in _EVENTS[1:] if e in run.events)
            lines.append(f"uninterrupted `rag {command}`: {timeline} s")
        phases = list(dict.fromkeys(p for command in PHASES for p in PHASES[command]))
        lines.append(f"{'kills':<8}" + "".join(f"{p:>10}" for p in phases) + f"{'total':>8}")
        for command in PHASES:
            counts = [self.kills[command, p] for p in phases]
            lines.append(f"{command:<8}" + "".join(f"{c:>10}" for c in counts) + f"{sum(counts):>8}")
        lines.append(
            f"survived {self.survived}/{self.total} kills; {self.completed} runs finished before their kill; "
            f"{len(self.failures)} failures; {self.seconds:.1f} s"
        )
        return "\n".join(lines + [f"FAILURE {failure}" for failure in self.failures])


class Campaign:
    """Kills `rag add`/`rag remove` of the ``extras`` files on the index at ``index_dir`` (which holds none of them)."""

    def __init__(
        self,
        index_dir: Path,
        extras: list[Path],
        embeddings: DenseEmbeddings,
        *,
        seed: int,
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.index_dir = index_dir
        self.settings = Settings(index_dir=index_dir)
        self.embeddings = embeddings
        self.rng = random.Random(seed)
        self.log = log
        self.extras = {load_file(path).id: path for path in extras}
        self.extra_ids = frozenset(self.extras)
        self.markers = {doc_id: _marker(path) for doc_id, path in self.extras.items()}
        self.pristine = index_dir.with_name(index_dir.name + ".pristine")
        shutil.copytree(index_dir, self.pristine)
        self.base = frozenset(Index.open(index_dir, self.settings, embeddings).snapshot.documents)
        self.ids = self.base
        self.summary = Summary()
        self._aims: dict[str, list[str]] = {command: [] for command in PHASES}

    def run(self, kills: int) -> Summary:
        started = time.monotonic()
        for command in ("add", "remove"):  # the timed reference runs
            args, new = self._next(command)
            self.summary.reference[command] = self._finish(args, new)
        while self.summary.total < kills:
            self._step()
        try:
            self._finish(*self._next(self._choose()))  # a last write through the command line after all that
        except CrashCheckError as error:
            self.summary.failures.append(f"the last, uninterrupted run: {error}")
        self.summary.seconds = time.monotonic() - started
        return self.summary

    # ------------------------------------------------------------------ steps
    def _choose(self) -> str:
        present = self.ids & self.extra_ids
        if not present or present == self.extra_ids:
            return "remove" if present else "add"
        done = {command: sum(n for (c, _), n in self.summary.kills.items() if c == command) for command in PHASES}
        return min(PHASES, key=lambda command: (done[command], self.rng.random()))

    def _next(self, command: str) -> tuple[list[str], frozenset[str]]:
        """The arguments of ``command`` from the current state, and the state it leads to."""
        if command == "add":
            return ["add", *map(str, self.extras.values())], self.ids | self.extra_ids
        doc_id = self.rng.choice(sorted(self.ids & self.extra_ids))
        return ["remove", str(self.extras[doc_id])], self.ids - {doc_id}

    def _aim(self, command: str) -> Aim:
        if not self._aims[command]:  # every phase in turn, in a seeded order
            self._aims[command] = self.rng.sample(PHASES[command], len(PHASES[command]))
        phases = self._aims[command]
        if phases[-1] == "embedding" and len(phases) > 1 and len(self.extra_ids - self.ids) < 2:
            # Adding one file embeds too briefly to be aimed into (and shows no progress bar): a later add.
            phases.insert(0, phases.pop())
        return aim_at(phases.pop(), self.summary.reference[command], self.rng)

    def _finish(self, args: list[str], new: frozenset[str]) -> Run:
        """Run the command uninterrupted; it must succeed."""
        run = run_rag(self.index_dir, args)
        self._succeeded(run, args, new)
        return run

    def _succeeded(self, run: Run, args: list[str], new: frozenset[str]) -> None:
        _require(run.returncode == 0, f"`rag {' '.join(args)}` exited with {run.returncode}: {run.stderr[-2000:]}")
        self._check({"new": new})
        check_clean(self.index_dir)
        self.ids = new

    def _step(self) -> None:
        command = self._choose()
        args, new = self._next(command)
        aim = self._aim(command)
        old, before = self.ids, _pointer(self.index_dir)
        run = run_rag(self.index_dir, args, aim)
        phase = phase_hit(self.index_dir, before, run, self.summary.reference[command])
        where = f"`rag {args[0]}` aimed at {aim.phase} ({aim.anchor} +{aim.offset * 1000:.1f} ms), hit {phase}"
        self.log(f"{where} ({run.seconds:.3f} s)")
        try:
            if not run.killed:
                self.summary.completed += 1
                self._succeeded(run, args, new)
                return
            self.summary.kills[command, phase] += 1
            state = self._check({"old": old, "new": new})
            self.ids = old if state == "old" else new
            self._write(new if state == "old" else old)  # complete or undo the command
            self.summary.survived += 1
        except Exception as error:  # noqa: BLE001 - every failure is recorded, then the campaign goes on
            detail = "".join(traceback.format_exception_only(type(error), error)).strip()
            self.summary.failures.append(f"{where}: {detail}")
            self.log(f"FAILURE {where}: {detail}")
            shutil.rmtree(self.index_dir)
            shutil.copytree(self.pristine, self.index_dir)
            self.ids = self.base

    def _check(self, states: dict[str, frozenset[str]]) -> str:
        return check_index(self.index_dir, self.settings, self.embeddings, states, self.markers)

    def _write(self, target: frozenset[str]) -> None:
        """Move the index to ``target`` with one `rag add` or `rag remove`, run in this process (no start-up to
        wait for); it must succeed, clean up what the kill left, and take a version number never used."""
        highest = max(int(name[1:]) for name in os.listdir(self.index_dir) if name[:1] == "v" and name[1:].isdigit())
        command = "add" if target - self.ids else "remove"
        paths = [str(self.extras[doc_id]) for doc_id in sorted(target ^ self.ids)]
        output = io.StringIO()
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            status = main([command, *paths, "--index-dir", str(self.index_dir)])
        _require(status == 0, f"the next `rag {command}` exited with {status}: {output.getvalue()[-2000:]}")
        self._check({"target": target})
        check_clean(self.index_dir)
        _require(read_manifest(self.index_dir)[0]["version"] > highest, "a version number was reused")
        self.ids = target
