"""Progress of long steps (chunking and embedding an index build): a terminal bar, and observers.

The CLI shows tqdm bars; the chat page shows the same steps in Chinese while the server starts
(:mod:`rag.startup`). Observers are kept in a context variable, so a build started in another
thread reports to the observers of the context it was started from (``contextvars.copy_context``),
and two builds in different threads do not see each other's steps.

```python
with observe(print):          # Step(stage='embedding', done=64, total=180, unit='passage'), …
    KnowledgeBase.open(settings)
```

Long steps can also be cancelled from another thread (the page's cancel button): :func:`cancellable` puts a
``threading.Event`` in the context, and the steps that can stop part-way (OCR, page by page and line by line)
read it with :func:`cancel_event` and raise when it is set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from threading import Event

__all__ = ["Bar", "Step", "bar", "cancel_event", "cancellable", "observe"]


@dataclass(frozen=True)
class Step:
    """How far a stage has come: ``done`` of ``total`` ``unit``s (stage: "chunking", "embedding")."""

    stage: str
    done: int
    total: int
    unit: str


Observer = Callable[[Step], None]
_observers: ContextVar[tuple[Observer, ...]] = ContextVar("rag_progress_observers", default=())
_cancel: ContextVar[Event | None] = ContextVar("rag_progress_cancel", default=None)


@contextmanager
def cancellable(event: Event) -> Iterator[Event]:
    """Steps run in this block stop (raising) once ``event`` is set."""
    token = _cancel.set(event)
    try:
        yield event
    finally:
        _cancel.reset(token)


def cancel_event() -> Event | None:
    """The cancel event of the current context, if any."""
    return _cancel.get()


@contextmanager
def observe(observer: Observer) -> Iterator[None]:
    """Call ``observer`` with every :class:`Step` reported in this context until the block ends."""
    token = _observers.set((*_observers.get(), observer))
    try:
        yield
    finally:
        _observers.reset(token)


class Bar:
    """A stage's counter: ``update(n)`` moves the terminal bar (if shown) and tells the observers."""

    def __init__(self, stage: str, total: int, unit: str, show: bool) -> None:
        self.stage, self.total, self.unit, self.done = stage, total, unit, 0
        self._observers = _observers.get()
        self._tqdm = None
        if show:
            from tqdm.auto import tqdm

            self._tqdm = tqdm(total=total, desc=stage, unit=unit)
        self._tell()

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._tqdm is not None:
            self._tqdm.update(n)
        self._tell()

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()

    def _tell(self) -> None:
        step = Step(self.stage, self.done, self.total, self.unit)
        for observer in self._observers:
            observer(step)

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bar(stage: str, total: int, unit: str, *, show: bool = False) -> Bar:
    """A counter for ``total`` ``unit``s of ``stage``; ``show`` draws a terminal bar (the CLI's ``progress``)."""
    return Bar(stage, total, unit, show)
