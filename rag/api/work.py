"""Answers and index writes run in worker threads, a bounded number at a time.

The bounds match the page's: ``concurrency_limit`` answers that use the CPU, apart from them
``llm_concurrency`` that wait on an LLM, and one index write at a time. A slot is held only while a
thread works, so a client that goes away mid-stream cannot keep one.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import anyio

from ..assistant import Assistant
from ..settings import Settings

T = TypeVar("T")


class Workers:
    def __init__(self, settings: Settings) -> None:
        self.cpu = anyio.CapacityLimiter(settings.concurrency_limit)
        self.llm = anyio.CapacityLimiter(settings.llm_concurrency)
        self.writes = anyio.CapacityLimiter(1)

    def for_answers(self, assistant: Assistant) -> anyio.CapacityLimiter:
        return self.llm if assistant.settings.generator == "openai" else self.cpu

    async def run(self, limiter: anyio.CapacityLimiter, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=limiter)

    async def iterate(self, limiter: anyio.CapacityLimiter, stream: Iterator[T]) -> AsyncIterator[T]:
        """``stream``'s items, each worked out in a thread; the stream is closed however this ends."""
        try:
            while (item := await anyio.to_thread.run_sync(next, stream, None, limiter=limiter)) is not None:
                yield item
        finally:
            # A cancelled step has finished (threads are not abandoned), so the generator can be closed;
            # that closes an LLM's connection at once rather than whenever it is collected.
            with anyio.CancelScope(shield=True):
                close = getattr(stream, "close", None)
                if close is not None:
                    await anyio.to_thread.run_sync(close)
