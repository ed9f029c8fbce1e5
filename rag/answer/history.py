"""Conversation history in either of the two shapes callers use.

Gradio's "messages" format (``{"role": "user"|"assistant", "content": str}``) and (user, assistant)
pairs become one list of :class:`Turn` objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str = ""


def _content(value: Any) -> str:
    """Message content as text (Gradio may pass a list of parts or a dict with 'text')."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return _content(value.get("text") or value.get("content"))
    if isinstance(value, (list, tuple)):
        return "".join(_content(part) for part in value)
    return str(value)


def turns(history: Iterable[Any] | None) -> list[Turn]:
    """Completed question/answer turns, oldest first; empty user messages are skipped."""
    out: list[Turn] = []
    for item in history or []:
        if isinstance(item, dict):
            role, content = item.get("role"), _content(item.get("content"))
            if role == "user" and content.strip():
                out.append(Turn(content.strip()))
            elif role == "assistant" and out and not out[-1].answer:
                out[-1] = Turn(out[-1].question, content.strip())
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            user, assistant = _content(item[0]).strip(), _content(item[1]).strip()
            if user:
                out.append(Turn(user, assistant))
        else:
            raise TypeError(f"history items must be role/content dicts or (user, assistant) pairs, got {item!r}")
    return out
