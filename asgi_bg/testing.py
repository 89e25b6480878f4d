"""Test clients: call any ASGI app in-process, sync (``TestClient``) or async.

A call returns once the ASGI call has finished, so an asgi_bg app's background tasks
have run. With ``raise_server_exceptions=True`` the first exception of the handler or of
a task is raised in the test as itself, after the remaining tasks ran.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

import anyio
import anyio.abc
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._context import ERRORS_KEY
from ._types import ASGIApp, Message, Scope
from ._ws_testclient import AsyncWebSocketSession, WebSocketTestSession, websocket_scope
from ._ws_testclient import WebSocketDenialResponse as WebSocketDenialResponse  # noqa: PLC0414
from .datastructures import Headers
from .requests import parse_cookie_header

Params = Mapping[str, Any] | None

_REDIRECTS = {301, 302, 303, 307, 308}
_MAX_REDIRECTS = 20


class TestResponse:
    """What the app answered: ``status_code``, ``headers``, ``content``, ``text``, ``json()``."""

    __test__ = False  # not a pytest test class

    def __init__(
        self, status_code: int, headers: list[tuple[bytes, bytes]], content: bytes, url: str
    ) -> None:
        self.status_code = status_code
        self.headers = Headers(headers)
        self.content = content
        self.url = url

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body decoded as JSON."""
        return jsonlib.loads(self.content)

    @property
    def is_success(self) -> bool:
        """True for a 2xx status."""
        return 200 <= self.status_code < 300

    def __repr__(self) -> str:
        return f"<TestResponse [{self.status_code}]>"


class _Exchange:
    """One ASGI HTTP call: feeds the request body, collects and checks what the app sends."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.request_sent = False
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.complete = anyio.Event()

    async def receive(self) -> Message:
        if not self.request_sent:
            self.request_sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.complete.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.status is not None:
                raise RuntimeError("The app sent http.response.start twice")
            self.status = int(message["status"])
            self.headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", ())]
        elif kind == "http.response.body":
            if self.status is None:
                raise RuntimeError("The app sent http.response.body before http.response.start")
            if self.complete.is_set():
                raise RuntimeError("The app sent http.response.body after the response completed")
            self.chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                self.complete.set()
        else:
            raise RuntimeError(f"Unexpected ASGI message {kind!r} on an HTTP connection")


class AsyncTestClient:
    """Async test client; ``async with`` runs the app's lifespan.

    Args:
        app: any ASGI 3 app.
        raise_server_exceptions: re-raise the app's (or a background task's) first error.
        base_url: scheme, host and port the requests claim to be sent to.
        root_path: the ``root_path`` a proxy or mount would set (the path includes it).
        follow_redirects: follow 3xx answers with a ``location``.
    """

    __test__ = False

    def __init__(
        self,
        app: ASGIApp,
        *,
        raise_server_exceptions: bool = True,
        base_url: str = "http://testserver",
        root_path: str = "",
        follow_redirects: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        self.raise_server_exceptions = raise_server_exceptions
        base = urlsplit(base_url)
        self.scheme = base.scheme or "http"
        self.host = base.hostname or "testserver"
        self.port = base.port or (443 if self.scheme == "https" else 80)
        self.netloc = base.netloc or self.host
        self.root_path = root_path
        self.follow_redirects = follow_redirects
        self.headers = dict(headers or {})
        self.cookies: dict[str, str] = {}
        self._lifespan: _Lifespan | None = None

    async def __aenter__(self) -> AsyncTestClient:
        self._lifespan = _Lifespan(self.app)
        await self._lifespan.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._lifespan is not None
        await self._lifespan.__aexit__(exc_type, exc, tb)
        self._lifespan = None

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Params = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        cookies: Mapping[str, str] | None = None,
    ) -> TestResponse:
        """Send one request and return the app's answer (following redirects if asked)."""
        body, extra = _encode_body(json, content)
        all_headers = {**self.headers, **extra, **(headers or {})}
        target = _with_params(url, params)
        response = await self._once(method.upper(), target, all_headers, body, cookies)
        for _ in range(_MAX_REDIRECTS):
            location = response.headers.get("location")
            if not (self.follow_redirects and response.status_code in _REDIRECTS and location):
                break
            method, body = _redirected(method.upper(), response.status_code, body)
            response = await self._once(method, location, all_headers, body, cookies)
        return response

    async def get(self, url: str, **kwargs: Any) -> TestResponse:
        """Send a GET request."""
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> TestResponse:
        """Send a POST request."""
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> TestResponse:
        """Send a PUT request."""
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> TestResponse:
        """Send a PATCH request."""
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> TestResponse:
        """Send a DELETE request."""
        return await self.request("DELETE", url, **kwargs)

    async def head(self, url: str, **kwargs: Any) -> TestResponse:
        """Send a HEAD request."""
        return await self.request("HEAD", url, **kwargs)

    async def options(self, url: str, **kwargs: Any) -> TestResponse:
        """Send an OPTIONS request."""
        return await self.request("OPTIONS", url, **kwargs)

    def websocket_connect(
        self,
        url: str,
        subprotocols: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncWebSocketSession:
        """Open a WebSocket to the app: ``async with client.websocket_connect("/ws") as ws``."""
        scope = self._scope("GET", url, {**self.headers, **(headers or {})}, b"", None)
        return AsyncWebSocketSession(
            self.app,
            websocket_scope(scope, subprotocols),
            raise_server_exceptions=self.raise_server_exceptions,
        )

    async def _once(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        cookies: Mapping[str, str] | None,
    ) -> TestResponse:
        scope = self._scope(method, url, headers, body, cookies)
        exchange = _Exchange(body)
        errors: list[BaseException] = []
        scope[ERRORS_KEY] = errors
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except Exception as exc:
            errors.insert(0, exc)
        finally:
            exchange.complete.set()
        if errors and self.raise_server_exceptions:
            raise errors[0]
        response = self._response(exchange, url)
        self._remember_cookies(response)
        return response

    def _response(self, exchange: _Exchange, url: str) -> TestResponse:
        if exchange.status is None:
            if self.raise_server_exceptions:
                raise RuntimeError("The app returned without starting a response")
            return TestResponse(500, [], b"", url)
        return TestResponse(exchange.status, exchange.headers, b"".join(exchange.chunks), url)

    def _scope(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        cookies: Mapping[str, str] | None,
    ) -> Scope:
        parts = urlsplit(url)
        path = unquote(parts.path) or "/"
        given = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        names = {k for k, _ in given}
        defaults = [(b"host", self.netloc.encode()), (b"user-agent", b"testclient")]
        raw = [(k, v) for k, v in defaults if k not in names] + given  # the caller's win
        if body or method in ("POST", "PUT", "PATCH"):
            raw.append((b"content-length", str(len(body)).encode()))
        jar = {**self.cookies, **(cookies or {})}
        if jar:
            raw.append((b"cookie", "; ".join(f"{k}={v}" for k, v in jar.items()).encode()))
        if not path.startswith(self.root_path + "/"):
            path = self.root_path + path  # a redirect's location already carries it
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": method,
            "scheme": self.scheme,
            "path": path,
            "raw_path": path.encode(),
            "root_path": self.root_path,
            "query_string": parts.query.encode(),
            "headers": raw,
            "client": ("testclient", 50000),
            "server": (self.host, self.port),
            # ASGI lifespan state: each request gets a shallow copy of what startup left.
            "state": dict(self._lifespan.state) if self._lifespan is not None else {},
            "extensions": {},
        }

    def _remember_cookies(self, response: TestResponse) -> None:
        for header in response.headers.getlist("set-cookie"):
            pair, _, attributes = header.partition(";")
            name, _, value = pair.partition("=")
            expired = "max-age=0" in attributes.lower().replace(" ", "")
            if expired:
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies.update(parse_cookie_header(f"{name.strip()}={value.strip()}"))


class TestClient:
    """Synchronous test client for any ASGI app; ``with`` runs the lifespan.

    Takes the same arguments as ``AsyncTestClient`` plus ``backend`` (``"asyncio"`` or
    ``"trio"``), the event loop the app runs on.
    """

    __test__ = False

    def __init__(
        self,
        app: ASGIApp,
        raise_server_exceptions: bool = True,
        base_url: str = "http://testserver",
        *,
        root_path: str = "",
        follow_redirects: bool = True,
        headers: Mapping[str, str] | None = None,
        backend: str = "asyncio",
    ) -> None:
        self.client = AsyncTestClient(
            app,
            raise_server_exceptions=raise_server_exceptions,
            base_url=base_url,
            root_path=root_path,
            follow_redirects=follow_redirects,
            headers=headers,
        )
        self.backend = backend
        self._portal: BlockingPortal | None = None
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._lifespan_cm: AbstractContextManager[Any] | None = None

    @property
    def app(self) -> ASGIApp:
        """The app under test."""
        return self.client.app

    @property
    def cookies(self) -> dict[str, str]:
        """Cookies the app set, sent back on later requests."""
        return self.client.cookies

    def __enter__(self) -> TestClient:
        self._portal_cm = start_blocking_portal(self.backend)
        self._portal = self._portal_cm.__enter__()
        lifespan = _Lifespan(self.client.app)
        self._lifespan_cm = self._portal.wrap_async_context_manager(lifespan)
        try:
            self._lifespan_cm.__enter__()
        except BaseException:
            self._portal_cm.__exit__(None, None, None)
            self._portal = None
            raise
        self.client._lifespan = lifespan  # requests see the lifespan state
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._lifespan_cm is not None and self._portal_cm is not None
        try:
            self._lifespan_cm.__exit__(exc_type, exc, tb)
        finally:
            self.client._lifespan = None
            self._portal_cm.__exit__(exc_type, exc, tb)
            self._portal = None

    def websocket_connect(
        self,
        url: str,
        subprotocols: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> WebSocketTestSession:
        """Open a WebSocket to the app: ``with client.websocket_connect("/ws") as ws``."""
        session = self.client.websocket_connect(url, subprotocols, headers)
        return WebSocketTestSession(session, lambda: self._portal, self.backend)

    def request(self, method: str, url: str, **kwargs: Any) -> TestResponse:
        """Send one request (see ``AsyncTestClient.request``)."""
        if self._portal is not None:
            return self._portal.call(lambda: self.client.request(method, url, **kwargs))
        with start_blocking_portal(self.backend) as portal:
            return portal.call(lambda: self.client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> TestResponse:
        """Send a GET request."""
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> TestResponse:
        """Send a POST request."""
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> TestResponse:
        """Send a PUT request."""
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> TestResponse:
        """Send a PATCH request."""
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> TestResponse:
        """Send a DELETE request."""
        return self.request("DELETE", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> TestResponse:
        """Send a HEAD request."""
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> TestResponse:
        """Send an OPTIONS request."""
        return self.request("OPTIONS", url, **kwargs)


class _Lifespan(AbstractAsyncContextManager["_Lifespan"]):
    """Runs the app's lifespan protocol in a task of its own for the client's lifetime."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._to_app, self._app_inbox = anyio.create_memory_object_stream[Message](2)
        self._app_outbox, self._from_app = anyio.create_memory_object_stream[Message](2)
        self._group: anyio.abc.TaskGroup | None = None
        self.state: dict[str, Any] = {}

    async def __aenter__(self) -> _Lifespan:
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        self._group.start_soon(self._run)
        try:
            await self._exchange("lifespan.startup", "lifespan.startup.complete")
        except BaseException:
            self._group.cancel_scope.cancel()
            await self._close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._group is not None
        try:
            await self._exchange("lifespan.shutdown", "lifespan.shutdown.complete")
        finally:
            await self._close()

    async def _close(self) -> None:
        assert self._group is not None
        try:
            await self._group.__aexit__(None, None, None)
        finally:
            # Unclosed streams warn when collected (an error under ``-W error``).
            for stream in (self._to_app, self._app_inbox, self._from_app):
                stream.close()

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        try:
            await self.app(scope, self._app_inbox.receive, self._app_outbox.send)
        finally:
            self._app_outbox.close()

    async def _exchange(self, request: str, expected: str) -> None:
        await self._to_app.send({"type": request})
        try:
            message = await self._from_app.receive()
        except anyio.EndOfStream:
            raise RuntimeError(f"The app ended its lifespan before answering {request}") from None
        if message["type"] != expected:
            raise RuntimeError(f"{request} failed: {message.get('message', message['type'])}")


def _encode_body(json: Any, content: bytes | str | None) -> tuple[bytes, dict[str, str]]:
    if json is not None:
        return jsonlib.dumps(json).encode(), {"content-type": "application/json"}
    if isinstance(content, str):
        return content.encode(), {}
    return content or b"", {}


def _with_params(url: str, params: Params) -> str:
    if not params:
        return url
    query = urlencode(list(_flatten(params)))
    return f"{url}{'&' if '?' in url else '?'}{query}"


def _flatten(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs = []
    for key, value in params.items():
        values = value if isinstance(value, list | tuple) else [value]
        pairs += [(key, str(v)) for v in values]
    return pairs


def _redirected(method: str, status: int, body: bytes) -> tuple[str, bytes]:
    # RFC 9110 15.4: 303 always becomes GET; browsers also turn a POST into GET on 301/302.
    if status == 303 or (status in (301, 302) and method == "POST"):
        return ("GET" if method != "HEAD" else "HEAD"), b""
    return method, body
