"""What an OCR backend gives back: text lines with their boxes on the page image."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from PIL.Image import Image

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels of the page image


@dataclass(frozen=True)
class TextBox:
    """One recognised line (or line piece) and its axis-aligned box."""

    text: str
    box: Box
    score: float = 1.0
    angle: float = 0.0  # skew of the line's baseline in degrees (clockwise positive, image y down), when known

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def pitch(self) -> float:
        """Type size as the advance per character along the line (CJK characters are square; Latin ones about half).

        Steadier than the box height, which grows with quotes and brackets and differs between engines."""
        units = sum(1.0 if ord(ch) > 0x2E7F else 0.55 for ch in self.text if not ch.isspace()) or 1.0
        return (self.height if self.vertical else self.width) / units

    @property
    def vertical(self) -> bool:
        """A vertical line of (traditional) text: much taller than wide and holding several characters."""
        return len(self.text) > 1 and self.height > 1.5 * self.width


class OcrUnavailable(Exception):
    """The backend's package or program is not installed."""

    def __init__(self, engine: str, reason: str) -> None:
        super().__init__(f"OCR engine {engine} unavailable: {reason}")
        self.engine = engine
        self.reason = reason


class OcrStopped(Exception):
    """A page's OCR was abandoned part-way (its time limit, or the user cancelled)."""


class OcrTimeout(OcrStopped):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"OCR of the page took over {seconds:g} s")
        self.seconds = seconds


class OcrCancelled(OcrStopped):
    def __init__(self) -> None:
        super().__init__("OCR cancelled")


@dataclass
class Budget:
    """When to give up on a page: past ``deadline`` (``time.monotonic()``), or once ``cancel`` is set.

    Engines call :meth:`check` between pieces of work, so a page stops within one piece of its limit."""

    deadline: float = math.inf
    seconds: float = math.inf  # the limit the deadline comes from, for the message
    cancel: threading.Event | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    @classmethod
    def starting_now(cls, seconds: float, cancel: threading.Event | None = None) -> "Budget":
        return cls(time.monotonic() + seconds, seconds, cancel)

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise OcrCancelled()
        if time.monotonic() > self.deadline:
            raise OcrTimeout(self.seconds)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def stop(self) -> None:
        """Abandon the page: work still queued for it is skipped."""
        self._stop.set()

    def stopped(self) -> bool:
        try:
            self.check()
        except OcrStopped:
            return True
        return self._stop.is_set()


class OcrEngine(Protocol):
    """A backend: one page image in, its text lines out (in no particular order); :class:`OcrStopped` when the
    budget runs out or is cancelled."""

    name: str

    def recognize(self, image: Image, budget: Budget | None = None) -> list[TextBox]: ...


__all__ = ["Box", "Budget", "OcrCancelled", "OcrEngine", "OcrStopped", "OcrTimeout", "OcrUnavailable", "TextBox"]
