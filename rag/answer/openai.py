"""Answers from any OpenAI-compatible chat endpoint (DeepSeek, DashScope, vLLM, Ollama, llama.cpp …).

The caller falls back to the extractive answer when this raises :class:`LLMError`; the message says why
in Chinese so it can be shown to the user. Neither it nor the log repeats what the server said: a
server may echo the API key in its error.

Every call has ``settings.llm_timeout`` seconds in all: the HTTP client's timeouts apply to each read,
so a stream that keeps sending tokens (or only keep-alive comments) would otherwise never end. A
streamed answer longer than ``settings.llm_max_chars`` is abandoned too. The calls run on one
background event loop, where giving up on a call cancels it and closes its connection at once; the
functions here stay synchronous.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

import openai
from langchain_core.messages import BaseMessage
from langchain_openai import ChatOpenAI

from ..settings import Settings
from ..types import Hit
from .prompts import answer_prompt, numbered_context, rewrite_prompt

log = logging.getLogger(__name__)

T = TypeVar("T")


class LLMError(RuntimeError):
    """The model could not be reached or answered with something unusable."""


def chat_model(settings: Settings, *, streaming: bool = False) -> ChatOpenAI:
    if not settings.openai_base_url and not settings.openai_api_key:
        raise LLMError("未配置大模型接口（请设置 OPENAI_BASE_URL 和 OPENAI_API_KEY）")
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "not-needed"
    return ChatOpenAI(
        model=settings.openai_model,
        base_url=settings.openai_base_url,
        api_key=key,
        temperature=settings.llm_temperature,
        timeout=settings.llm_timeout,
        max_retries=0,  # a local server that fails once usually fails again; fall back instead of waiting
        streaming=streaming,
        http_async_client=_http_client(settings.llm_timeout),
    )


@functools.lru_cache(maxsize=8)
def _http_client(timeout: float) -> Any:
    """The connection pool of the calls (used only on :func:`_io_loop`), one per timeout."""
    return openai.DefaultAsyncHttpxClient(timeout=timeout)


_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _io_loop() -> asyncio.AbstractEventLoop:
    """The event loop, in a daemon thread, that runs every LLM call of this process."""
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="rag-llm-io", daemon=True).start()
        return _loop


def _after_fork() -> None:
    """A forked child has the loop but not its thread (nor usable connections): start afresh."""
    global _loop, _loop_lock
    _loop, _loop_lock = None, threading.Lock()
    _http_client.cache_clear()


os.register_at_fork(after_in_child=_after_fork)


def _run(coroutine: Coroutine[Any, Any, T], deadline: float, settings: Settings) -> T:
    """The result of ``coroutine`` run on the I/O loop; at ``deadline`` it is cancelled and LLMError raised."""
    future = asyncio.run_coroutine_threadsafe(coroutine, _io_loop())
    try:
        return future.result(timeout=max(0.0, deadline - time.monotonic()))
    except concurrent.futures.TimeoutError:
        if not future.cancel():  # it finished after all (perhaps with a timeout error of its own)
            return future.result()
        log.warning("LLM call abandoned after %g s", settings.llm_timeout)
        raise LLMError(f"大模型接口超时（超过 {settings.llm_timeout:g} 秒）") from None


_END = object()


async def _next(chunks: AsyncIterator[T]) -> T | object:
    try:
        return await anext(chunks)
    except StopAsyncIteration:
        return _END


async def _aclose(chunks: Any) -> None:
    for _ in range(300):
        try:
            return await chunks.aclose()
        except RuntimeError:  # "already running": a cancelled read is still unwinding
            await asyncio.sleep(0.01)


def _close(chunks: Any) -> None:
    """Close an answer stream, and with it its HTTP connection, if it is still open."""
    if chunks.ag_frame is None:  # finished
        return
    try:
        asyncio.run_coroutine_threadsafe(_aclose(chunks), _io_loop()).result(timeout=5)
    except Exception as error:  # noqa: BLE001 - the answer is decided; only log
        log.warning("closing the LLM stream failed: %s", _summary(error))


def _summary(error: Exception) -> str:
    """What went wrong, for the log: the error's type and HTTP status, never its message (it may hold a key)."""
    status = getattr(error, "status_code", None)
    return type(error).__name__ + (f" (HTTP {status})" if status else "")


def _describe(error: Exception, settings: Settings) -> str:
    name = type(error).__name__
    if "Timeout" in name:
        return f"大模型接口超时（超过 {settings.llm_timeout:g} 秒）"
    if "Connection" in name:
        return "无法连接大模型接口"
    status = getattr(error, "status_code", None)
    if status:
        return f"大模型接口返回错误（HTTP {status}）"
    return f"大模型接口返回了无法解析的结果（{name}）"


def answer_messages(question: str, hits: list[Hit], reader_hint: str = "") -> list[BaseMessage]:
    return answer_prompt().format_messages(context=numbered_context(hits), question=question, reader_hint=reader_hint)


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    raise LLMError("大模型接口返回了无法解析的结果")


def stream_answer(question: str, hits: list[Hit], settings: Settings, reader_hint: str = "") -> Iterator[str]:
    """Text deltas of the model's answer (markers included, unchecked). Raises :class:`LLMError`.

    ``reader_hint``: the prompt's line about the reader's span. Closing the iterator early closes the connection.
    """
    model = chat_model(settings, streaming=True)
    deadline = time.monotonic() + settings.llm_timeout
    chunks = model.astream(answer_messages(question, hits, reader_hint))
    length = 0
    try:
        while (chunk := _run(_next(chunks), deadline, settings)) is not _END:
            delta = _text(chunk.content)
            length += len(delta)
            if length > settings.llm_max_chars:
                log.warning("LLM answer abandoned at %d characters", length)
                raise LLMError(f"大模型的回答过长（超过 {settings.llm_max_chars} 字）")
            if delta:
                yield delta
    except LLMError:
        raise
    except Exception as error:  # noqa: BLE001 - any transport or protocol failure: the caller falls back
        log.warning("LLM call failed: %s", _summary(error))
        raise LLMError(_describe(error, settings)) from None
    finally:
        _close(chunks)
    if not length:
        raise LLMError("大模型接口返回了空回答")


def complete(prompt: list[BaseMessage] | str, settings: Settings) -> str:
    """One non-streaming completion. Raises :class:`LLMError`."""
    model = chat_model(settings)
    try:
        message = _run(model.ainvoke(prompt), time.monotonic() + settings.llm_timeout, settings)
        text = _text(message.content).strip()
    except LLMError:
        raise
    except Exception as error:  # noqa: BLE001 - as in stream_answer
        log.warning("LLM call failed: %s", _summary(error))
        raise LLMError(_describe(error, settings)) from None
    if not text:
        raise LLMError("大模型接口返回了空回答")
    return text


def rewrite_question(question: str, history: str, settings: Settings) -> str:
    """The follow-up as a standalone question, by the rewrite prompt. Raises :class:`LLMError`."""
    text = complete(rewrite_prompt().format(history=history, question=question), settings)
    return text.splitlines()[0].strip().strip('“”"')
