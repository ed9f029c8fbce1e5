"""The page's login when API keys are set (``RAG_API_KEYS``): one of those keys opens the page.

With keys set, every request to the page (its HTML, assets and Gradio's own API) needs the cookie
that ``/login`` sets, or the key itself (``Authorization: Bearer KEY``, for scripts such as
``gradio_client``). A ``ro:`` key may ask and look, not upload, delete, rebuild or create knowledge
bases. The HTTP API (``/v1``) and MCP (``/mcp``) check their keys themselves. Without keys the
page is open, as before.

The cookie is an HMAC of a fixed text under the key, never the key: it stays valid while that key is
configured (across restarts), and a key removed from ``RAG_API_KEYS`` logs its sessions out.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from html import escape
from typing import Any

from starlette.requests import Request, cookie_parser
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..api.keys import ApiKey, KeyRing, parse_keys
from ..settings import Settings

__all__ = ["COOKIE", "READ_ONLY_MESSAGE", "LoginGuard", "PageLogin"]

COOKIE = "rag_page_session"
READ_ONLY_MESSAGE = "当前登录的是只读密钥：可以提问和查看文档，不能上传、删除、重建或新建知识库。"
#: Paths that check their own keys (the HTTP API and MCP) or must open without a login.
_OWN_CHECK = ("/v1/", "/mcp")
_OPEN = ("/login", "/logout")
_SALT = b"rag-news-zh page session v1"


class PageLogin:
    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self._tokens = [(_token(key), key) for key in ring.keys]

    @classmethod
    def from_settings(cls, settings: Settings) -> PageLogin:
        """``ValueError`` for a malformed ``RAG_API_KEYS`` (the message does not contain the keys)."""
        return cls(KeyRing(parse_keys(settings.api_keys)))

    @property
    def enabled(self) -> bool:
        return self.ring.enabled

    def key_of(self, cookies: Mapping[str, str], authorization: str | None) -> ApiKey | None:
        """The key a request is logged in with (its cookie, else its bearer key), or ``None``."""
        cookie = cookies.get(COOKIE, "").encode()
        found = None
        for token, key in self._tokens:  # all compared: timing does not tell which one nearly matched
            if hmac.compare_digest(cookie, token.encode()):
                found = key
        if found is None:
            scheme, _, secret = (authorization or "").partition(" ")
            if scheme.lower() == "bearer":
                found = self.ring.find(secret)
        return found

    def can_write(self, request: Any) -> bool:
        """Whether the page's visitor (a ``gr.Request``) may upload, delete, rebuild and create."""
        if not self.enabled:
            return True
        if request is None:
            return False
        headers = {name.lower(): value for name, value in dict(getattr(request, "headers", None) or {}).items()}
        key = self.key_of(dict(getattr(request, "cookies", None) or {}), headers.get("authorization"))
        return key is not None and not key.read_only

    def routes(self) -> list[Route]:
        """``/login`` (the form, and the key it posts) and ``/logout``."""

        async def login(request: Request) -> Response:
            if request.method == "GET":
                return HTMLResponse(_form())
            form = await request.form()
            key = self.ring.find(str(form.get("key") or ""))
            if key is None:
                return HTMLResponse(_form("密钥无效，请重新输入。"), status_code=401)
            response = RedirectResponse("/", status_code=303)
            response.set_cookie(
                COOKIE, _token(key), httponly=True, samesite="lax", secure=request.url.scheme == "https", path="/"
            )
            return response

        async def logout(request: Request) -> Response:
            response = RedirectResponse("/login", status_code=303)
            response.delete_cookie(COOKIE, path="/")
            return response

        return [Route("/login", login, methods=["GET", "POST"]), Route("/logout", logout, methods=["GET"])]



class LoginGuard:
    """ASGI middleware: the page's requests need a login (the API's and MCP's pass through to their own check)."""

    def __init__(self, app: ASGIApp, login: PageLogin) -> None:
        self.app = app
        self.login = login

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] not in ("http", "websocket")
            or not self.login.enabled
            or path in _OPEN
            or path.startswith(_OWN_CHECK)
        ):
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        if self.login.key_of(cookie_parser(headers.get("cookie", "")), headers.get("authorization")) is not None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope.get("method") == "GET" and "text/html" in headers.get("accept", ""):
            response: Response = RedirectResponse("/login", status_code=303)
        else:
            response = JSONResponse(
                {"error": "请先登录：在网页上输入 API Key，或发送 Authorization: Bearer <key>。"}, status_code=401
            )
        await response(scope, receive, send)


def _token(key: ApiKey) -> str:
    return hmac.new(key.secret.encode(), _SALT, hashlib.sha256).hexdigest()


def _form(error: str = "") -> str:
    message = f'<p class="error">{escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>新闻问答助手：请登录</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f6f7f9; display: flex; justify-content: center; padding-top: 12vh; }}
form {{ background: #fff; padding: 2em; border-radius: 12px; box-shadow: 0 2px 12px rgba(0,0,0,.08); width: 22em; }}
input {{ width: 100%; box-sizing: border-box; padding: .6em; margin: .6em 0 1em; font-size: 1em; }}
button {{ width: 100%; padding: .6em; font-size: 1em; }}
.error {{ color: #b00020; }} .hint {{ color: #666; font-size: .85em; }}
</style></head><body>
<form method="post" action="/login">
<h2>新闻问答助手</h2>
{message}
<label for="key">访问密钥（API Key）</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<button type="submit">登录</button>
<p class="hint">使用服务器 RAG_API_KEYS 中的一个密钥。只读密钥（ro:）可以提问，不能上传或删除文档。</p>
</form></body></html>"""
