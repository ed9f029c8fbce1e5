"""Serving ``rag.api`` with uvicorn on a free loopback port, in a thread of the test process.

Importable as ``api_serving`` from the tests (tests/ is on ``sys.path``). The clients in the tests
are real ones (``openai``, LangChain, ``mcp``, httpx) talking HTTP to this server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from support import free_port

#: Keys for the tests' servers (RAG_API_KEYS syntax: the second one is read-only).
RW_KEY = "rw-test-key-0123456789abcdef"
RO_KEY = "ro-test-key-0123456789abcdef"
API_KEYS = f"{RW_KEY},ro:{RO_KEY}"


@contextmanager
def serve_api(app, timeout: float = 60) -> Iterator[str]:
    """Serve the ASGI ``app`` on 127.0.0.1 until the block ends; yields its base URL."""
    import uvicorn

    port = free_port()
    # Open keep-alive and streaming connections (Gradio clients) would hold a graceful shutdown for the whole join.
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
