"""OpenAI-compatible chat: ``GET /v1/models`` and ``POST /v1/chat/completions``.

Each knowledge base is a model. The last user message is the question, the earlier user/assistant
turns its history (system messages are ignored: the assistant answers from its documents only).
The answer's text carries the ``[n]`` markers; the citations travel in an extra top-level field
``rag`` of the response, or of the final chunk of a stream (see :func:`rag_extra`). A stream sends
the generator's draft as it comes; when the citation check then changes it, one more delta adds
:data:`CHECKED` and the checked answer, which is also ``rag.text``.
Beyond OpenAI's fields a request may set ``k`` (passages retrieved) and ``mode`` (hybrid, dense, bm25).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict
from starlette.types import Receive, Scope, Send

from ..types import Answer
from ..validation import InputError
from .context import Context
from .errors import ApiError, error_body

log = logging.getLogger(__name__)

#: Precedes the checked answer in a stream whose draft the citation check changed (as `rag chat` shows it).
CHECKED = "\n\n（核对引用后）"


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = "text"
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, max_tokens, … are accepted and ignored
    model: str
    messages: list[ChatMessage]
    stream: bool = False
    k: Any = None  # checked by the assistant, which says what is wrong with it
    mode: Any = None


def conversation(messages: list[ChatMessage]) -> tuple[str, list[dict[str, str]]]:
    """(question, history as role/content messages) from a chat request's messages."""
    if not messages:
        raise ApiError(400, "messages is empty: send at least one message with role 'user'.", param="messages")
    turns = [m for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user":
        raise ApiError(400, "The last message must be the user's question (role 'user').", param="messages")
    return turns[-1].text, [{"role": m.role, "content": m.text} for m in turns[:-1]]


def rag_extra(answer: Answer) -> dict[str, Any]:
    """The ``rag`` field: the checked answer text and its citations (``n`` matches ``[n]`` in the text)."""
    return {
        "text": answer.text,
        "refused": answer.refused,
        "citations": [citation.to_dict() for citation in answer.citations],
        "rewritten_question": answer.rewritten_question,
        "generator": answer.generator,
        "note": answer.note,
    }


class _EventStream(StreamingResponse):
    """An SSE response that closes its event generator however the response ends (a client gone too)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()  # type: ignore[union-attr]


def router(context: Context) -> APIRouter:
    api = APIRouter(dependencies=[Depends(context.reader)])

    @api.get("/v1/models")
    def models() -> dict[str, Any]:
        """The knowledge bases, as models."""
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "rag"} for name in context.provider.names()
            ],
        }

    @api.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatRequest) -> dict[str, Any] | StreamingResponse:
        """Answer the last user message from knowledge base ``model``, with citations in ``rag``."""
        assistant = context.assistant(body.model)
        question, history = conversation(body.messages)
        overrides = {name: value for name, value in (("k", body.k), ("mode", body.mode)) if value is not None}
        limiter = context.workers.for_answers(assistant)
        reply_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        try:
            if not body.stream:
                answer = await context.workers.run(limiter, assistant.ask, question, history, **overrides)
                return {
                    "id": reply_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": body.model,
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": answer.text}, "finish_reason": "stop"}
                    ],
                    "rag": rag_extra(answer),
                }
            stream = assistant.stream(question, history, **overrides)  # checks the question before any output
        except InputError as error:
            raise ApiError(400, str(error), code="invalid_input") from error

        def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            chunk = {
                "id": reply_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

        async def events() -> AsyncIterator[str]:
            yield event({"role": "assistant", "content": ""})
            answer, streamed = None, []
            try:
                async for item in context.workers.iterate(limiter, stream):
                    if isinstance(item, Answer):
                        answer = item
                    else:
                        streamed.append(item)
                        yield event({"content": item})
            except Exception:
                log.exception("answering a streamed chat request failed")
            if answer is None:
                # OpenAI clients raise an error for an event that holds "error".
                yield f"data: {json.dumps(error_body(500, 'Answering failed; please retry.'), ensure_ascii=False)}\n\n"
                return
            if "".join(streamed).strip() != answer.text:
                # The citation check changed the streamed draft (an uncited LLM claim became the refusal):
                # clients that only concatenate the content must see the checked answer too.
                yield event({"content": CHECKED + answer.text})
            yield event({}, "stop", rag=rag_extra(answer))
            yield "data: [DONE]\n\n"

        return _EventStream(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    return api
