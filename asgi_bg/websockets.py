"""The app side of a WebSocket: the ``WebSocket`` a handler receives, and its errors.

A ``WebSocket`` shares headers, query, cookies, path parameters and URL with
``Request`` (both are ``HTTPConnection``s), so the injector serves both with one plan.
Its two state machines follow the ASGI messages: ``client_state`` moves on what the
server delivers, ``application_state`` on what the handler sends.
"""

from __future__ import annotations

import enum
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ._types import Message, Receive, Scope, Send
from .requests import HTTPConnection

T = TypeVar("T")

if TYPE_CHECKING:
    from .responses import Response


class WebSocketState(enum.Enum):
    """Where one side of the connection is: before, during or after the conversation."""

    CONNECTING = 0
    CONNECTED = 1
    DISCONNECTED = 2
    RESPONSE = 3  # the handshake was refused with an HTTP response of the app's own


class WebSocketDisconnect(Exception):
    """The connection closed: ``code`` and ``reason`` are those of the closing frame."""

    def __init__(self, code: int = 1000, reason: str | None = None) -> None:
        super().__init__(code, reason or "")
        self.code = code
        self.reason = reason or ""

    def __repr__(self) -> str:
        return f"WebSocketDisconnect(code={self.code}, reason={self.reason!r})"


# 1005 "no status received" is what a peer reports for a close frame without a code.
_NO_STATUS = 1005
# 1006: the connection dropped without a closing handshake (RFC 6455 section 7.1.5).
_ABNORMAL = 1006


class WebSocket(HTTPConnection):
    """One WebSocket connection, as a handler sees it."""

    __slots__ = ("_receive", "_send", "application_state", "client_state")

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            raise ValueError(f"a WebSocket needs a 'websocket' scope, not {scope['type']!r}")
        super().__init__(scope)
        self._receive = receive
        self._send = send
        self.client_state = WebSocketState.CONNECTING
        self.application_state = WebSocketState.CONNECTING

    # --- raw ASGI messages ------------------------------------------------------------

    async def receive(self) -> Message:
        """The next ASGI message from the client (``websocket.connect/receive/disconnect``)."""
        state = self.client_state
        if state is WebSocketState.DISCONNECTED:
            raise RuntimeError("Cannot receive: the client already disconnected")
        message = await self._receive()
        kind = message["type"]
        expected = ("websocket.connect",) if state is WebSocketState.CONNECTING else _IN_SESSION
        if kind not in expected:
            raise RuntimeError(f"Unexpected ASGI message {kind!r}, expected one of {expected}")
        if kind == "websocket.connect":
            self.client_state = WebSocketState.CONNECTED
        elif kind == "websocket.disconnect":
            self.client_state = WebSocketState.DISCONNECTED
        return message

    async def send(self, message: Message) -> None:
        """Send one ASGI message; a connection the client dropped raises
        ``WebSocketDisconnect(1006)``."""
        self.application_state = _next_app_state(self.application_state, message["type"])
        try:
            await self._send(message)
        except OSError:
            # ASGI 2.4: sending on a closed connection raises an OSError.
            self.application_state = WebSocketState.DISCONNECTED
            raise WebSocketDisconnect(_ABNORMAL) from None

    # --- handshake and closing ----------------------------------------------------------

    async def accept(
        self,
        subprotocol: str | None = None,
        headers: Iterable[tuple[bytes, bytes]] | Mapping[str, str] | None = None,
    ) -> None:
        """Accept the handshake, choosing one of ``scope["subprotocols"]`` if any."""
        if self.client_state is WebSocketState.CONNECTING:
            await self.receive()  # websocket.connect
        message: Message = {"type": "websocket.accept", "subprotocol": subprotocol}
        if headers:
            message["headers"] = _raw_headers(headers)
        await self.send(message)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection; before ``accept`` this refuses the handshake (403)."""
        await self.send({"type": "websocket.close", "code": code, "reason": reason or ""})

    async def send_denial_response(self, response: Response) -> None:
        """Refuse the handshake with an HTTP response of the app's own.

        Needs the server's ASGI ``websocket.http.response`` extension (asgi_bg's server,
        uvicorn and hypercorn have it); elsewhere this raises RuntimeError.
        """
        if "websocket.http.response" not in self.scope.get("extensions", {}):
            raise RuntimeError("The server does not support the websocket.http.response extension")
        await response(self.scope, self.receive, self._denial_send)

    async def _denial_send(self, message: Message) -> None:
        await self.send({**message, "type": "websocket." + message["type"]})

    # --- messages -----------------------------------------------------------------------

    async def receive_text(self) -> str:
        """The next text message; raises ``WebSocketDisconnect`` when the client left."""
        return str(_payload(await self._receive_message(), "text"))

    async def receive_bytes(self) -> bytes:
        """The next binary message; raises ``WebSocketDisconnect`` when the client left."""
        return bytes(_payload(await self._receive_message(), "bytes"))

    async def receive_json(self, mode: Literal["text", "binary"] = "text") -> Any:
        """The next message decoded as JSON, read from a text (or a binary) message."""
        message = await self._receive_message()
        if mode == "binary":
            return json.loads(_payload(message, "bytes").decode("utf-8"))
        return json.loads(_payload(message, "text"))

    def iter_text(self) -> AsyncIterator[str]:
        """Text messages until the client disconnects (then the loop just ends)."""
        return _until_disconnect(self.receive_text)

    def iter_bytes(self) -> AsyncIterator[bytes]:
        """Binary messages until the client disconnects (then the loop just ends)."""
        return _until_disconnect(self.receive_bytes)

    def iter_json(self) -> AsyncIterator[Any]:
        """JSON text messages until the client disconnects (then the loop just ends)."""
        return _until_disconnect(self.receive_json)

    async def send_text(self, data: str) -> None:
        """Send a text message."""
        await self.send({"type": "websocket.send", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message."""
        await self.send({"type": "websocket.send", "bytes": data})

    async def send_json(self, data: Any, mode: Literal["text", "binary"] = "text") -> None:
        """Send ``data`` as compact JSON in a text (or a binary) message."""
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if mode == "binary":
            await self.send_bytes(text.encode("utf-8"))
        else:
            await self.send_text(text)

    async def _receive_message(self) -> Message:
        if self.application_state is not WebSocketState.CONNECTED:
            raise RuntimeError('WebSocket is not connected: call "accept" first')
        message = await self.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", _NO_STATUS), message.get("reason"))
        return message


_IN_SESSION = ("websocket.receive", "websocket.disconnect")

# (state, message type) -> the application state after sending it; absent: not allowed.
_APP_MOVES: dict[tuple[WebSocketState, str], WebSocketState] = {
    (WebSocketState.CONNECTING, "websocket.accept"): WebSocketState.CONNECTED,
    (WebSocketState.CONNECTING, "websocket.close"): WebSocketState.DISCONNECTED,
    (WebSocketState.CONNECTING, "websocket.http.response.start"): WebSocketState.RESPONSE,
    (WebSocketState.CONNECTED, "websocket.send"): WebSocketState.CONNECTED,
    (WebSocketState.CONNECTED, "websocket.close"): WebSocketState.DISCONNECTED,
    (WebSocketState.RESPONSE, "websocket.http.response.body"): WebSocketState.RESPONSE,
}


def _next_app_state(state: WebSocketState, kind: str) -> WebSocketState:
    after = _APP_MOVES.get((state, kind))
    if after is None:
        raise RuntimeError(f"Cannot send {kind!r} while the WebSocket is {state.name}")
    return after


def _payload(message: Message, key: str) -> Any:
    value = message.get(key)
    if value is None:
        other = "binary" if key == "text" else "text"
        raise RuntimeError(f"Expected a {key} message, the client sent a {other} one")
    return value


def _raw_headers(
    headers: Iterable[tuple[bytes, bytes]] | Mapping[str, str],
) -> list[tuple[bytes, bytes]]:
    if isinstance(headers, Mapping):
        return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    return [(bytes(k).lower(), bytes(v)) for k, v in headers]


async def _until_disconnect(receive: Callable[[], Awaitable[T]]) -> AsyncIterator[T]:
    try:
        while True:
            yield await receive()
    except WebSocketDisconnect:
        return
