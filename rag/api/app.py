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
from collections.abc import AsyncIterator

from fastapi import FastAPI

from ..settings import Settings
from . import chat, errors, library
from .context import Context
from .limits import MAX_JSON_BYTES, MULTIPART_OVERHEAD, BodyLimit
from .mcp_server import build_mcp, mount_mcp
from .provider import AssistantProvider

#: Upload requests may hold several files: the page's own hard cap, four times the per-file limit.
UPLOADS_PER_REQUEST = 4


def create_api(assistants: AssistantProvider, settings: Settings | None = None) -> FastAPI:
    """The API over ``assistants``; ``settings`` gives the limits and ``api_keys`` (default: from the environment).

    Raises ``ValueError`` for a malformed ``RAG_API_KEYS`` (the message does not contain the keys)."""
    settings = settings or Settings()
    context = Context.create(assistants, settings)
    server = build_mcp(context)
    sessions = None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with sessions.run():
            yield

    api = FastAPI(
        title="rag-news-zh API",
        description="OpenAI-compatible chat over the knowledge bases (citations in the `rag` field), retrieval, "
        "documents, and MCP at /mcp.",
        lifespan=lifespan,
    )
    errors.install(api)
    api.include_router(chat.router(context))
    api.include_router(library.router(context))
    sessions = mount_mcp(api, server, context)

    upload_limit = UPLOADS_PER_REQUEST * settings.max_file_bytes + MULTIPART_OVERHEAD

    def body_limit(path: str) -> int:
        return upload_limit if path.rstrip("/") == "/v1/documents" else MAX_JSON_BYTES

    api.add_middleware(BodyLimit, limit_for=body_limit)
    api.state.context = context
    return api
