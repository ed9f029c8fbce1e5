"""The HTTP API as a FastAPI application: OpenAI-compatible chat, retrieval, documents, and MCP at ``/mcp``.

```python
import uvicorn
from rag.api import SingleAssistant, create_api
uvicorn.run(create_api(SingleAssistant.load(settings), settings), host=settings.host, port=settings.port)
```

Mounting the chat page on the same app keeps one process and one port
(``gradio.mount_gradio_app(api, demo, path="/")``); the app's lifespan runs the MCP session manager,
so serve this app itself (not as a sub-application) for ``/mcp`` to work.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from ..settings import Settings
from . import chat, errors, library
from .context import Context
from .limits import MAX_JSON_BYTES, MULTIPART_OVERHEAD, BodyLimit
from .mcp_server import MCP_PATH, build_mcp, mcp_routes
from .provider import AssistantProvider

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: Upload requests may hold several files: the page's own hard cap, four times the per-file limit.
UPLOADS_PER_REQUEST = 4


def create_api(assistants: AssistantProvider, settings: Settings | None = None) -> FastAPI:
    """The API over ``assistants``; ``settings`` gives the limits and ``api_keys`` (default: from the environment).

    Raises ``ValueError`` for a malformed ``RAG_API_KEYS`` (the message does not contain the keys)."""
    settings = settings or Settings()
    context = Context.create(assistants, settings)
    if not context.keys.enabled and settings.host not in LOOPBACK:
        log.warning("the API on %s needs no key: set RAG_API_KEYS before exposing it", settings.host)
    mcp, sessions = mcp_routes(build_mcp(context), context)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with sessions.run():
            yield

    api = FastAPI(
        title="rag-news-zh API",
        description="OpenAI-compatible chat over the knowledge bases (citations in the `rag` field), retrieval, "
        "documents, and MCP at /mcp.",
        routes=mcp,
        lifespan=lifespan,
    )
    errors.install(api)
    api.include_router(chat.router(context))
    api.include_router(library.router(context))

    upload_limit = UPLOADS_PER_REQUEST * settings.max_file_bytes + MULTIPART_OVERHEAD

    def body_limit(path: str) -> int | None:
        if path.rstrip("/") == "/v1/documents":
            return upload_limit
        # The page mounted on the same app has its own limits (its uploads are files, not JSON).
        return MAX_JSON_BYTES if path.startswith(("/v1/", MCP_PATH)) else None

    api.add_middleware(BodyLimit, limit_for=body_limit)
    api.state.context = context
    return api
