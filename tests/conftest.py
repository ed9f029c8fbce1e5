"""Shared fixtures: one index over the seeds, built once per test run (shared by pytest-xdist's workers)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

import pytest

from rag import KnowledgeBase, Settings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_QA = ROOT / "examples" / "seeds_qa.jsonl"
DATASETS = ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session", autouse=True)
def private_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Knowledge bases that tests create by name go to a temporary folder, never the user's data folder
    (XDG_DATA_HOME as well: a test that clears the RAG_* variables still stays out of it)."""
    path = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAG_DATA_DIR", str(path / "rag"))
        patch.setenv("XDG_DATA_HOME", str(path / "xdg"))
        yield path / "rag"


@pytest.fixture(scope="session")
def seed_qa() -> list[dict]:
    return [json.loads(line) for line in SEED_QA.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def seed_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only index of seeds/ built with the default settings. Copy it before changing it.

    Built once per run: under pytest-xdist the first worker to need it builds it in the run's shared
    temp dir while the others wait on the lock.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # this run's folder, above the workers' own
    path = root / "seeds-index"
    with (root / "seeds-index.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (path / "CURRENT").is_file():
            shutil.rmtree(path, ignore_errors=True)  # what a worker that failed half-way left
            KnowledgeBase.build([SEEDS], Settings(index_dir=path))
    return path


@pytest.fixture(scope="session")
def seed_knowledge(seed_index_dir: Path) -> KnowledgeBase:
    """The shared seeds knowledge base (do not add or remove documents through it)."""
    return KnowledgeBase.open(Settings(index_dir=seed_index_dir), build_if_missing=False)


@pytest.fixture(scope="session")
def seed_assistant(seed_knowledge: KnowledgeBase):
    """An :class:`~rag.Assistant` over the shared seeds knowledge base (extractive by default)."""
    from rag import Assistant

    return Assistant(seed_knowledge, seed_knowledge.settings)


@pytest.fixture()
def writable_index_dir(seed_index_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the seeds index that a test may change."""
    path = tmp_path / "index"
    shutil.copytree(seed_index_dir, path)
    return path


# ---------------------------------------------------------------------------- a local chat-completions server
class FakeChatServer:
    """A local HTTP server speaking OpenAI's /v1/chat/completions (JSON and SSE streaming).

    ``reply`` is the answer text, or a function of the request body returning it. ``mode`` makes it
    misbehave (a request's ``model`` naming a mode overrides it, so one server can serve several):

    - "error": HTTP 500; "garbage": 200 with a body that is not JSON (nor SSE);
    - "bad_sse": 200, an event stream whose second event is not JSON;
    - "slow": answers after ``delay`` seconds;
    - "endless": streams ``piece`` every ``interval`` seconds and never finishes;
    - "silent": starts a stream, then sends only SSE keep-alive comments every ``interval`` seconds;
    - "reflect": HTTP 401 whose message repeats the request's Authorization header (as some servers do).

    ``requests`` and ``headers`` (lower-case names) record what was asked; ``open_streams`` counts responses still being
    written (an endless one ends when the client closes its connection, or after ``max_seconds``).
    """

    MODES = ("ok", "error", "garbage", "bad_sse", "slow", "endless", "silent", "reflect")

    def __init__(self) -> None:
        import http.server
        import threading
        import time

        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.reply = "根据现有资料无法回答该问题。"
        self.mode = "ok"
        self.delay = 3.0
        self.piece = "很长"
        self.interval = 0.05
        self.max_seconds = 60.0
        self.open_streams = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                try:
                    self._answer()
                except (BrokenPipeError, ConnectionResetError):  # the client gave up first
                    pass

            def _answer(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with fake._lock:
                    fake.requests.append(body)
                    fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                mode = body.get("model") if body.get("model") in fake.MODES else fake.mode
                if mode == "slow":
                    fake._stopped.wait(fake.delay)
                if mode == "error":
                    return self._send(500, "application/json", b'{"error": {"message": "boom", "type": "server_error"}}')
                if mode == "garbage":
                    return self._send(200, "application/json", b"<html>this is not json")
                if mode == "reflect":
                    message = f"Incorrect API key provided: {self.headers.get('Authorization')}"
                    error = {"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}}
                    return self._send(401, "application/json", json.dumps(error).encode())
                if mode in ("bad_sse", "endless", "silent"):
                    return self._misbehaving_stream(mode, body.get("model", "fake"))
                text = fake.reply(body) if callable(fake.reply) else fake.reply
                if body.get("stream"):
                    self._stream(text, body.get("model", "fake"))
                else:
                    payload = {
                        "id": "cmpl-1", "object": "chat.completion", "created": 0, "model": body.get("model", "fake"),
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                    self._send(200, "application/json", json.dumps(payload, ensure_ascii=False).encode())

            def _send(self, status: int, content_type: str, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _event(self, model: str, delta: dict, finish: str | None = None) -> bytes:
                chunk = {
                    "id": "cmpl-1", "object": "chat.completion.chunk", "created": 0, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
                return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()

            def _stream(self, text: str, model: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                pieces = [text[i : i + 4] for i in range(0, len(text), 4)]
                for i, piece in enumerate([*pieces, None]):
                    delta = {"content": piece} if piece is not None else {}
                    if i == 0:
                        delta["role"] = "assistant"
                    self.wfile.write(self._event(model, delta, None if piece is not None else "stop"))
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def _misbehaving_stream(self, mode: str, model: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                self.close_connection = True
                with fake._lock:
                    fake.open_streams += 1
                try:
                    self.wfile.write(self._event(model, {"role": "assistant", "content": fake.piece}))
                    self.wfile.flush()
                    if mode == "bad_sse":
                        self.wfile.write(b'data: {"choices": [{"index": 0, "delta": {"content": "\xe6\x96\n\n')
                        self.wfile.write(b"data: [DONE]\n\n")
                        return
                    ends = time.monotonic() + fake.max_seconds
                    while time.monotonic() < ends and not fake._stopped.wait(fake.interval):
                        if mode == "endless":
                            self.wfile.write(self._event(model, {"content": fake.piece}))
                        else:
                            self.wfile.write(b": keep-alive\n\n")
                        self.wfile.flush()
                except OSError:  # the client closed the connection
                    pass
                finally:
                    with fake._lock:
                        fake.open_streams -= 1

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def wait_until(self, condition, timeout: float) -> bool:
        """Whether ``condition(self)`` became true within ``timeout`` seconds."""
        import time

        deadline = time.monotonic() + timeout
        while not condition(self):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def close(self) -> None:
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture()
def chat_server():
    """A fresh local chat-completions server (see :class:`FakeChatServer`)."""
    server = FakeChatServer()
    yield server
    server.close()
