"""What every endpoint needs: the knowledge bases, the settings, the worker slots and the keys."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from ..assistant import Assistant
from ..settings import Settings
from .errors import unknown_kb
from .keys import ApiKey, KeyRing, parse_keys
from .provider import AssistantProvider
from .work import Workers


@dataclass
class Context:
    provider: AssistantProvider
    settings: Settings
    workers: Workers
    keys: KeyRing

    @classmethod
    def create(cls, provider: AssistantProvider, settings: Settings, *, with_keys: bool = True) -> Context:
        """``with_keys=False`` for stdio, where the client started the server and is its only user."""
        keys = KeyRing(parse_keys(settings.api_keys) if with_keys else [])
        return cls(provider, settings, Workers(settings), keys)

    def assistant(self, name: str) -> Assistant:
        """The assistant over knowledge base ``name``; a 404 in OpenAI's shape for an unknown one."""
        try:
            return self.provider.get(name)
        except KeyError:
            raise unknown_kb(name, self.provider.names()) from None

    # FastAPI dependencies
    def reader(self, request: Request) -> ApiKey | None:
        return self.keys.check(request.headers.get("authorization"))

    def writer(self, request: Request) -> ApiKey | None:
        return self.keys.check_write(request.headers.get("authorization"))
