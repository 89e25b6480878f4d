"""The ASGI wrappers some options put around the app (none when they are off)."""

from __future__ import annotations

from collections.abc import Callable

from .._types import ASGIApp, Message, Receive, Scope, Send
from .config import ServerConfig
from .proxy import ProxyHeaders


def wrap_app(app: ASGIApp, config: ServerConfig, on_max_requests: Callable[[], None]) -> ASGIApp:
    """The app as the options want it served; unchanged when none of them is on."""
    if config.headers:
        app = ExtraHeaders(app, config.headers)
    if config.proxy_headers:
        app = ProxyHeaders(app, config.forwarded_allow_ips)
    if config.ssl_certfile is not None:
        app = SecureScheme(app)
    if config.limit_max_requests is not None:
        app = RequestCounter(app, config.limit_max_requests, on_max_requests)
    return app


class SecureScheme:
    """Over TLS the scope's scheme is `https` (`wss` for a websocket)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["scheme"] = "https"
        elif scope["type"] == "websocket":
            scope["scheme"] = "wss"
        await self._app(scope, receive, send)


class ExtraHeaders:
    """`--header NAME:VALUE`: added to every response, as uvicorn adds them."""

    def __init__(self, app: ASGIApp, headers: tuple[str, ...]) -> None:
        self._app = app
        self._headers = []
        for header in headers:
            name, _, value = header.partition(":")
            self._headers.append(
                (name.strip().lower().encode("latin-1"), value.strip().encode("latin-1"))
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self._headers]}
            await send(message)

        await self._app(scope, receive, send_with_headers)


class RequestCounter:
    """`--limit-max-requests`: after `limit` requests, ask the server to stop."""

    def __init__(self, app: ASGIApp, limit: int, on_limit: Callable[[], None]) -> None:
        self._app = app
        self._left = limit
        self._on_limit = on_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self._left -= 1
            if self._left == 0:
                self._on_limit()
        await self._app(scope, receive, send)
