"""Errors in OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, for every failure.

OpenAI clients (and tools built on them) read the message from there, so FastAPI's own shapes
(``{"detail": …}``, 422 for a bad body) are replaced: a body that is not valid JSON or not a valid
request is a 400 with a message naming the field.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..startup import NotReadyError

#: OpenAI's error type for each status we send.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    500: "server_error",
    503: "service_unavailable_error",
}
#: Seconds a client is asked to wait before retrying while the knowledge base is being built.
RETRY_AFTER = 5


class ApiError(HTTPException):
    """An HTTP error with a message for the API's caller.

    An ``HTTPException``, so that one raised while FastAPI reads a body (see :mod:`.limits`) keeps its status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, message, headers)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers


def error_body(status: int, message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": _TYPES.get(status, "invalid_request_error"), "param": param, "code": code}
    }


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(
        error_body(error.status, error.message, error.code, error.param), error.status, headers=error.headers
    )


def unknown_kb(name: str, available: list[str]) -> ApiError:
    return ApiError(
        404,
        f"The model (knowledge base) {name!r} does not exist; available: {', '.join(available) or 'none'}.",
        code="model_not_found",
        param="model",
    )


def _validation_message(error: RequestValidationError) -> tuple[str, str | None]:
    problems, param = [], None
    for item in error.errors():
        loc = [str(part) for part in item.get("loc", ()) if part != "body"]
        if item.get("type") == "json_invalid":
            return f"The request body is not valid JSON ({item.get('ctx', {}).get('error', 'parse error')}).", None
        param = param or ".".join(loc) or None
        problems.append(f"{'.'.join(loc) or 'body'}: {item.get('msg')}")
    return "Invalid request: " + "; ".join(problems), param


def install(app: FastAPI) -> None:
    """Make ``app`` answer every error in OpenAI's shape."""

    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(error)

    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(error)
        return error_response(ApiError(400, message, param=param))

    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        detail = error.detail if isinstance(error.detail, str) else "Request failed."
        return error_response(ApiError(error.status_code, detail, headers=getattr(error, "headers", None)))

    async def not_ready(request: Request, error: NotReadyError) -> JSONResponse:
        # The server answers while its knowledge base is still being opened or built (rag.startup).
        status = error.status
        if status.state == "loading":
            message = f"The knowledge base is not ready yet, retry in a few seconds: {status.message}"
            return error_response(ApiError(503, message, code="not_ready", headers={"Retry-After": str(RETRY_AFTER)}))
        message = f"The knowledge base could not be opened: {status.message} {status.detail}".rstrip()
        return error_response(ApiError(503, message, code="knowledge_base_unavailable"))

    async def crash(request: Request, error: Exception) -> JSONResponse:
        # Logged by Starlette with its traceback; the caller gets no internals.
        return error_response(ApiError(500, "Internal error while answering; please retry.", code="internal_error"))

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(NotReadyError, not_ready)
    app.add_exception_handler(Exception, crash)
