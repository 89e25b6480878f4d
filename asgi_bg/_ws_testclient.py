"""The test clients' WebSocket sessions: ``client.websocket_connect(path)``.

The app runs in a task of the session; two unbounded in-memory queues stand for the
network. Entering the session sends ``websocket.connect`` and waits for the app's
answer: an accept opens the session, a close raises ``WebSocketDisconnect`` and an HTTP
denial response raises ``WebSocketDenialResponse``. An exception of the endpoint is
raised in the test, from the call that sees the connection end or from leaving the
``with`` block.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Literal

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._context import ERRORS_KEY
from ._types import ASGIApp, Message, Scope
from .websockets import WebSocketDisconnect

_ABNORMAL = 1006


class WebSocketDenialResponse(Exception):
    """The app refused the handshake with an HTTP response (``send_denial_response``)."""

    def __init__(self, status_code: int, headers: list[tuple[bytes, bytes]], content: bytes):
        super().__init__(status_code)
        self.status_code = status_code
        self.headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers}
        self.content = content

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.content.decode("utf-8", errors="replace")


class _ClientClosed(OSError):
    """ASGI 2.4: a send after the client closed raises an ``OSError``."""


def websocket_scope(http_scope: Scope, subprotocols: Sequence[str] | None) -> Scope:
    """Turn the test client's HTTP scope for ``GET url`` into a handshake's scope."""
    scope = dict(http_scope)
    del scope["method"]
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if http_scope["scheme"] == "https" else "ws"
    scope["subprotocols"] = list(subprotocols or ())
    scope["extensions"] = {"websocket.http.response": {}}
    headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
    headers += [
        (b"connection", b"upgrade"),
        (b"upgrade", b"websocket"),
        (b"sec-websocket-version", b"13"),
        (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),  # RFC 6455's sample key
    ]
    if subprotocols:
        headers.append((b"sec-websocket-protocol", ", ".join(subprotocols).encode()))
    scope["headers"] = headers
    return scope


class AsyncWebSocketSession:
    """One WebSocket to the app under test; use with ``async with``."""

    __test__ = False

    def __init__(self, app: ASGIApp, scope: Scope, *, raise_server_exceptions: bool) -> None:
        self._app = app
        self._scope = scope
        self._errors: list[BaseException] = []
        scope[ERRORS_KEY] = self._errors
        self._raise = raise_server_exceptions
        self._to_app, self._app_inbox = anyio.create_memory_object_stream[Message](math.inf)
        self._app_outbox, self._from_app = anyio.create_memory_object_stream[Message](math.inf)
        self._group: Any = None
        self._closed = False  # either side closed
        self.accepted_subprotocol: str | None = None
        self.extra_headers: list[tuple[bytes, bytes]] = []

    async def __aenter__(self) -> AsyncWebSocketSession:
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        self._group.start_soon(self._run_app)
        try:
            self._to_app.send_nowait({"type": "websocket.connect"})
            message = await self._next()
            if message["type"] != "websocket.accept":
                await self._refused(message)
        except BaseException:
            self._group.cancel_scope.cancel()
            await self._group.__aexit__(None, None, None)
            self._close_streams()
            raise
        self.accepted_subprotocol = message.get("subprotocol")
        self.extra_headers = list(message.get("headers", []))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._closed:
            await self.close()
        if exc is not None:
            self._group.cancel_scope.cancel()  # the test failed: do not wait for the app
        await self._group.__aexit__(None, None, None)
        self._close_streams()
        if exc is None:
            self._raise_app_error()

    def _close_streams(self) -> None:
        for stream in (self._to_app, self._app_inbox, self._app_outbox, self._from_app):
            stream.close()

    async def _run_app(self) -> None:
        try:
            await self._app(self._scope, self._app_receive, self._app_send)
        except Exception as exc:
            if exc not in self._errors:
                self._errors.insert(0, exc)
        finally:
            self._app_outbox.close()

    async def _app_receive(self) -> Message:
        try:
            return await self._app_inbox.receive()
        except anyio.EndOfStream:
            return {"type": "websocket.disconnect", "code": _ABNORMAL, "reason": ""}

    async def _app_send(self, message: Message) -> None:
        if self._closed and message["type"] != "websocket.close":
            raise _ClientClosed("the test client closed the WebSocket")
        if not self._closed:
            self._app_outbox.send_nowait(message)

    async def _next(self) -> Message:
        try:
            return await self._from_app.receive()
        except anyio.EndOfStream:
            self._closed = True
            self._raise_app_error()
            raise WebSocketDisconnect(_ABNORMAL, "the app returned without closing") from None

    async def _refused(self, message: Message) -> None:
        self._closed = True
        if message["type"] == "websocket.http.response.start":
            body = b""
            more: Message = {"more_body": True}
            while more.get("more_body", False):
                more = await self._next()
                body += more.get("body", b"")
            raise WebSocketDenialResponse(message["status"], list(message.get("headers", [])), body)
        self._raise_app_error()
        if message["type"] == "websocket.close":
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
        raise RuntimeError(f"Expected the app to accept or close, it sent {message['type']!r}")

    def _raise_app_error(self) -> None:
        if self._errors and self._raise:
            raise self._errors[0]

    # --- the test's side ----------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """Deliver a raw ASGI message to the app."""
        self._to_app.send_nowait(message)

    async def send_text(self, data: str) -> None:
        """Send a text message."""
        await self.send({"type": "websocket.receive", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message."""
        await self.send({"type": "websocket.receive", "bytes": data})

    async def send_json(self, data: Any, mode: Literal["text", "binary"] = "text") -> None:
        """Send ``data`` as JSON in a text (or a binary) message."""
        text = json.dumps(data, separators=(",", ":"))
        await (self.send_bytes(text.encode()) if mode == "binary" else self.send_text(text))

    async def receive(self) -> Message:
        """The app's next message; its close raises ``WebSocketDisconnect(code, reason)``."""
        message = await self._next()
        if message["type"] == "websocket.close":
            self._closed = True
            self._raise_app_error()
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
        return message

    async def receive_text(self) -> str:
        """The next text message."""
        message = await self.receive()
        if message.get("text") is None:
            raise RuntimeError("Expected a text message, the app sent a binary one")
        return str(message["text"])

    async def receive_bytes(self) -> bytes:
        """The next binary message."""
        message = await self.receive()
        if message.get("bytes") is None:
            raise RuntimeError("Expected a binary message, the app sent a text one")
        return bytes(message["bytes"])

    async def receive_json(self, mode: Literal["text", "binary"] = "text") -> Any:
        """The next message decoded as JSON."""
        if mode == "binary":
            return json.loads(await self.receive_bytes())
        return json.loads(await self.receive_text())

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close from the client's side: the app receives ``websocket.disconnect``."""
        if not self._closed:
            self._closed = True
            self._to_app.send_nowait(
                {"type": "websocket.disconnect", "code": code, "reason": reason or ""}
            )
            self._to_app.close()


class WebSocketTestSession:
    """The blocking form of ``AsyncWebSocketSession``, for ``TestClient``; use with ``with``.

    It runs on the client's event loop when the client is inside ``with``, otherwise on
    a loop of its own for the session's life.
    """

    __test__ = False

    def __init__(
        self,
        session: AsyncWebSocketSession,
        portal: Callable[[], BlockingPortal | None],
        backend: str,
    ) -> None:
        self._session = session
        self._client_portal = portal
        self._backend = backend
        self._own: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._cm: AbstractContextManager[AsyncWebSocketSession] | None = None

    def __enter__(self) -> WebSocketTestSession:
        portal = self._client_portal()
        if portal is None:
            self._own = start_blocking_portal(self._backend)
            portal = self._own.__enter__()
        self._portal = portal
        self._cm = portal.wrap_async_context_manager(self._session)
        try:
            self._cm.__enter__()
        except BaseException:
            self._close_own()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._cm is not None
        try:
            self._cm.__exit__(exc_type, exc, tb)
        finally:
            self._close_own()

    def _close_own(self) -> None:
        if self._own is not None:
            self._own.__exit__(None, None, None)
            self._own = None

    def _call(self, func: Callable[..., Any], *args: Any) -> Any:
        if self._portal is None:
            raise RuntimeError("Use the session inside 'with client.websocket_connect(...)'")
        return self._portal.call(func, *args)

    @property
    def accepted_subprotocol(self) -> str | None:
        """The subprotocol the app chose in ``accept``, if any."""
        return self._session.accepted_subprotocol

    @property
    def extra_headers(self) -> list[tuple[bytes, bytes]]:
        """The headers the app added in ``accept``."""
        return self._session.extra_headers

    def send(self, message: Message) -> None:
        """Deliver a raw ASGI message to the app."""
        self._call(self._session.send, message)

    def send_text(self, data: str) -> None:
        """Send a text message."""
        self._call(self._session.send_text, data)

    def send_bytes(self, data: bytes) -> None:
        """Send a binary message."""
        self._call(self._session.send_bytes, data)

    def send_json(self, data: Any, mode: Literal["text", "binary"] = "text") -> None:
        """Send ``data`` as JSON in a text (or a binary) message."""
        self._call(self._session.send_json, data, mode)

    def receive(self) -> Message:
        """The app's next message; its close raises ``WebSocketDisconnect``."""
        return self._call(self._session.receive)  # type: ignore[no-any-return]

    def receive_text(self) -> str:
        """The next text message."""
        return self._call(self._session.receive_text)  # type: ignore[no-any-return]

    def receive_bytes(self) -> bytes:
        """The next binary message."""
        return self._call(self._session.receive_bytes)  # type: ignore[no-any-return]

    def receive_json(self, mode: Literal["text", "binary"] = "text") -> Any:
        """The next message decoded as JSON."""
        return self._call(self._session.receive_json, mode)

    def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close from the client's side."""
        self._call(self._session.close, code, reason)
