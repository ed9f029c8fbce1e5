"""Chinese news question answering with citations: hybrid retrieval over cleaned, chunked articles."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .assistant import Assistant
    from .knowledge import IngestReport, KnowledgeBase
    from .settings import Settings
    from .types import Answer, Chunk, Citation, Document, Hit

__all__ = ["Answer", "Assistant", "Chunk", "Citation", "Document", "Hit", "IngestReport", "KnowledgeBase", "Settings"]

# Loaded on first use (PEP 562), so that `rag --help` or `from rag.settings import Settings` does not
# pay for the retrieval stack.
_HOMES = {
    "Assistant": "assistant",
    "IngestReport": "knowledge",
    "KnowledgeBase": "knowledge",
    "Settings": "settings",
    **dict.fromkeys(("Answer", "Chunk", "Citation", "Document", "Hit"), "types"),
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
