"""API keys: ``RAG_API_KEYS="KEY1,ro:KEY2"``; a ``ro:`` key may read and ask but not upload or delete.

With no keys configured the API asks for none (it binds to loopback by default). With keys, every
call needs ``Authorization: Bearer KEY``. Keys are compared in constant time and never logged or
echoed: errors say what is wrong, not which key was sent.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import ApiError, error_response

#: Shorter keys are refused at start: they can be guessed.
MIN_KEY_CHARS = 16
_PREFIXES = {"ro": True, "rw": False}


@dataclass(frozen=True)
class ApiKey:
    secret: str = field(repr=False)
    read_only: bool = False


def parse_keys(value: SecretStr | str | None) -> list[ApiKey]:
    """The keys in a ``RAG_API_KEYS`` value; ``ValueError`` (without the keys) for a malformed one."""
    text = value.get_secret_value() if isinstance(value, SecretStr) else (value or "")
    keys = []
    for position, item in enumerate((part.strip() for part in text.split(",")), 1):
        if not item:
            continue
        scope, colon, rest = item.partition(":")
        read_only = False
        if colon and scope in _PREFIXES:
            item, read_only = rest.strip(), _PREFIXES[scope]
        if len(item) < MIN_KEY_CHARS or any(ch.isspace() for ch in item):
            raise ValueError(
                f"RAG_API_KEYS: key #{position} is shorter than {MIN_KEY_CHARS} characters or contains spaces"
            )
        keys.append(ApiKey(item, read_only))
    if text.strip() and not keys:
        raise ValueError("RAG_API_KEYS is set but holds no key")
    return keys


class KeyRing:
    """Checks ``Authorization`` headers against the configured keys."""

    def __init__(self, keys: list[ApiKey]) -> None:
        self._keys = keys

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    @property
    def keys(self) -> list[ApiKey]:
        return list(self._keys)

    def check(self, authorization: str | None) -> ApiKey | None:
        """The key a request carries (``None`` when no keys are configured), or a 401 :class:`ApiError`."""
        if not self._keys:
            return None
        challenge = {"WWW-Authenticate": "Bearer"}
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(
                401, "Missing API key: send 'Authorization: Bearer <key>'.", code="missing_api_key", headers=challenge
            )
        found = self.find(token)
        if found is None:
            raise ApiError(401, "Invalid API key.", code="invalid_api_key", headers=challenge)
        return found

    def find(self, secret: str) -> ApiKey | None:
        """The configured key equal to ``secret`` (surrounding spaces ignored), else ``None``."""
        sent = secret.strip().encode()
        found = None
        for key in self._keys:  # every key is compared, so timing does not tell which one nearly matched
            if hmac.compare_digest(sent, key.secret.encode()):
                found = key
        return found if sent else None

    def check_write(self, authorization: str | None) -> ApiKey | None:
        """As :meth:`check`, and a 403 :class:`ApiError` for a read-only key."""
        key = self.check(authorization)
        if key is not None and key.read_only:
            raise ApiError(
                403, "This API key is read-only: it cannot upload or delete documents.", code="read_only_key"
            )
        return key


class RequireKey:
    """ASGI wrapper: HTTP requests to ``app`` need a valid key (for apps that are not FastAPI routes)."""

    def __init__(self, app: ASGIApp, ring: KeyRing) -> None:
        self.app = app
        self.ring = ring

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.ring.enabled:
            headers = {name.lower(): value for name, value in scope.get("headers", [])}
            try:
                self.ring.check(headers.get(b"authorization", b"").decode("latin-1"))
            except ApiError as error:
                await error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)
