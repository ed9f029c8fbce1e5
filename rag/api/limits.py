"""Request bodies over a size limit are refused with 413 before they are read into memory.

The declared ``Content-Length`` is checked first; a body sent without one (chunked) is counted as
it arrives and refused once it passes the limit.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError, error_response

#: JSON requests (chat with its history, retrieve, MCP calls): far more than any valid request needs.
MAX_JSON_BYTES = 1024 * 1024
#: Room for the multipart framing around an uploaded file.
MULTIPART_OVERHEAD = 64 * 1024


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"The request body is larger than {limit} bytes.", code="request_too_large")


class BodyLimit:
    """ASGI middleware: ``limit_for(path)`` bytes at most per request body (``None``: not limited here)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int | None]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit_for(scope["path"]) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        headers = {name.lower(): value for name, value in scope.get("headers", [])}
        try:
            declared = int(headers.get(b"content-length", b"0"))
        except ValueError:
            declared = 0
        if declared > limit:
            await error_response(_too_large(limit))(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit)  # an HTTPException: FastAPI's body parsing lets it through as it is
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except ApiError as error:  # raised where no handler turned it into a response
            if started:
                raise
            await error_response(error)(scope, receive, send)
