"""Which knowledge bases the API serves: a name → :class:`~rag.assistant.Assistant` lookup."""

from __future__ import annotations

from typing import Protocol

from ..assistant import Assistant
from ..settings import Settings

#: The name the single knowledge base at ``settings.index_dir`` is served under.
DEFAULT_KB = "default"


class AssistantProvider(Protocol):
    """What the API needs from a set of knowledge bases."""

    def names(self) -> list[str]:
        """The knowledge bases served, by name."""
        ...

    def get(self, name: str) -> Assistant:
        """The assistant over knowledge base ``name``; ``KeyError`` for an unknown one."""
        ...


class SingleAssistant:
    """One assistant served under one name (the knowledge base at ``settings.index_dir``)."""

    def __init__(self, assistant: Assistant, name: str = DEFAULT_KB) -> None:
        self.assistant = assistant
        self.name = name

    @classmethod
    def load(cls, settings: Settings | None = None) -> SingleAssistant:
        return cls(Assistant.load(settings))

    def names(self) -> list[str]:
        return [self.name]

    def get(self, name: str) -> Assistant:
        if name != self.name:
            raise KeyError(name)
        return self.assistant
