"""WebSocket connections on the embedded server: the upgrade from h11, RFC 6455 via wsproto.

The HTTP connection hands over a request carrying ``Upgrade: websocket``; from there this
module owns the socket. wsproto does the handshake and the framing; this module runs the
ASGI call and three duties around it:

- reading: frames are put together into messages (fragments joined, ``ws_max_size``
  enforced with close code 1009) and queued for the app, a few at most, so a client
  that sends faster than the app reads is slowed down by TCP, not buffered;
- writing: each ``websocket.send`` waits until the socket took the bytes, so a client
  that stops reading stops the app's sends rather than growing the server's memory;
- keep-alive: a ping every ``ws_ping_interval`` seconds; no pong within
  ``ws_ping_timeout`` closes the connection (1011).

On graceful shutdown an open WebSocket is closed with 1012 ("service restart").
wsproto is the optional extra ``asgi_bg[websockets]``; without it a handshake is
answered 501 and the log names the extra.
"""

from __future__ import annotations

import enum
import math
from typing import TYPE_CHECKING, Any

import anyio
import h11
from anyio.abc import ByteStream, TaskGroup

from .._types import Message, Scope
from ..datastructures import loggable_path
from ._http import ASGI_VERSION
from .state import ServerState, access_logger, logger
from .ws_inbox import Inbox, MessageAssembler, MessageTooBig

try:
    from wsproto import ConnectionType, WSConnection
    from wsproto.connection import ConnectionState
    from wsproto.events import (
        AcceptConnection,
        BytesMessage,
        CloseConnection,
        Event,
        Ping,
        Pong,
        RejectConnection,
        RejectData,
        Request,
        TextMessage,
    )
    from wsproto.events import Message as WSMessage
    from wsproto.extensions import PerMessageDeflate
    from wsproto.utilities import RemoteProtocolError

    HAVE_WSPROTO = True
except ImportError:  # the optional extra asgi_bg[websockets]
    HAVE_WSPROTO = False

if TYPE_CHECKING:
    from .connection import HTTPConnection

WS_SPEC_VERSION = "2.4"
_READ_SIZE = 64 * 1024
# Whole messages queued for the app before the server stops reading the socket.
_INBOX = 16
# How long a closing handshake waits for the client's Close frame.
_CLOSE_WAIT = 2.0
_STREAM_GONE = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)

# Close codes (RFC 6455 section 7.4.1; 1012 from the IANA registry).
NORMAL = 1000
ABNORMAL = 1006  # the connection dropped without a Close frame
TOO_BIG = 1009
INTERNAL_ERROR = 1011
SERVICE_RESTART = 1012


class ClientDisconnected(OSError):
    """ASGI 2.4: ``send`` on a WebSocket that is already closed."""


class _Handshake(enum.Enum):
    PENDING = 0
    ACCEPTED = 1
    DENYING = 2  # an HTTP denial response is being sent
    REFUSED = 3


def is_websocket_upgrade(request: h11.Request) -> bool:
    """True when the request asks to switch to the WebSocket protocol."""
    return any(
        name == b"upgrade" and value.lower() == b"websocket" for name, value in request.headers
    )


class WebSocketSession:
    """One upgraded connection: the handshake, the ASGI call, and the frames."""

    def __init__(
        self,
        conn: HTTPConnection,
        stream: ByteStream,
        state: ServerState,
        request: h11.Request,
        scope: Scope,
    ) -> None:
        self._conn = conn
        self._stream = stream
        self._state = state
        self._request = request
        self._http_scope = scope
        self._config = state.config
        self._ws = WSConnection(ConnectionType.SERVER) if HAVE_WSPROTO else None
        self._handshake = _Handshake.PENDING
        self._inbox = Inbox(_INBOX)
        self._connect_delivered = False
        self._close: tuple[int, str] | None = None  # what the app hears on disconnect
        # PERF: writes rarely contend (the app's sends; a pong now and then): without
        # fast_acquire each one paid two extra event-loop turns in the echo benchmark.
        self._lock = anyio.Lock(fast_acquire=True)
        self._pong = anyio.Event()
        self._reader_done = anyio.Event()
        self._group: TaskGroup | None = None
        self._shutting_down = False

    # --- the life of the connection -----------------------------------------------------

    @property
    def complete(self) -> bool:
        """The connection is closed (the call may still run its background tasks)."""
        return self._close is not None

    def describe(self) -> str:
        """`WebSocket path` for log lines."""
        return f"WebSocket {self._path()}"

    async def run(self) -> None:
        """Serve the connection until the app returned and the socket closed."""
        # An ASGI call like any other: it counts for `limit_concurrency`, and shutdown
        # names it if it has to cancel it.
        self._state.requests.add(self)
        try:
            if self._ws is None:
                await self._without_wsproto()
            elif (offer := await self._handshake_request(self._ws)) is not None:
                async with anyio.create_task_group() as group:
                    self._group = group
                    await self._call_app(self._websocket_scope(offer))
                    group.cancel_scope.cancel()  # the reader and the pinger
        finally:
            self._state.requests.discard(self)
            self._group = None
            self._inbox.close()

    async def _without_wsproto(self) -> None:
        logger.error(
            "WebSocket handshake for %s refused: WebSocket support needs wsproto, "
            "install the extra: pip install 'asgi_bg[websockets]'",
            self._path(),
        )
        await self._conn.write_simple(501, close=True)

    async def _handshake_request(self, ws: WSConnection) -> Request | None:
        """wsproto's view of the handshake, or None after a malformed one was refused."""
        try:
            ws.initiate_upgrade_connection(list(self._request.headers), self._request.target)
        except RemoteProtocolError as exc:
            hint = exc.event_hint
            refusal = hint if isinstance(hint, RejectConnection) else RejectConnection(400)
            self._log(f"rejected {refusal.status_code}: {exc}")
            await self._write(ws.send(refusal))
            return None
        return next(e for e in ws.events() if isinstance(e, Request))

    def _websocket_scope(self, offer: Request) -> Scope:
        scope = dict(self._http_scope)
        del scope["method"]
        scope["type"] = "websocket"
        scope["asgi"] = {"version": ASGI_VERSION, "spec_version": WS_SPEC_VERSION}
        scope["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
        scope["subprotocols"] = list(offer.subprotocols)
        scope["extensions"] = {"websocket.http.response": {}}
        return scope

    def shutdown(self) -> None:
        """Graceful shutdown: an open WebSocket closes with 1012 ("service restart")."""
        self._shutting_down = True
        if self._handshake is _Handshake.ACCEPTED and self._close is None and self._group:
            self._group.start_soon(self._close_now, SERVICE_RESTART, "server shutting down")

    async def _call_app(self, scope: Scope) -> None:
        raised = False
        try:
            await self._state.app(scope, self._receive, self._send)
        except Exception:
            raised = True
            logger.exception("Exception in the ASGI app serving WebSocket %s", self._path())
        await self._after_app(raised)

    async def _after_app(self, raised: bool) -> None:
        """The app returned: finish the handshake or the closing handshake it left."""
        if self._handshake is _Handshake.PENDING:
            await self._refuse(500 if raised else 403)
            return
        if self._handshake is not _Handshake.ACCEPTED:
            return
        await self._close_now(INTERNAL_ERROR if raised else NORMAL, "")
        with anyio.move_on_after(_CLOSE_WAIT):
            await self._reader_done.wait()

    # --- ASGI ---------------------------------------------------------------------------

    async def _receive(self) -> Message:
        if not self._connect_delivered:
            self._connect_delivered = True
            return {"type": "websocket.connect"}
        message = await self._inbox.get()
        if message is None:  # closed, and every queued message was taken
            code, reason = self._close or (ABNORMAL, "")
            return {"type": "websocket.disconnect", "code": code, "reason": reason}
        return message

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if self._handshake is _Handshake.ACCEPTED:
            await self._send_in_session(kind, message)
        elif self._handshake is _Handshake.PENDING and kind == "websocket.accept":
            await self._accept(message)
        elif self._handshake is _Handshake.PENDING and kind == "websocket.close":
            await self._refuse(403)
        elif kind.startswith("websocket.http.response.") and self._handshake in (
            _Handshake.PENDING,
            _Handshake.DENYING,
        ):
            await self._deny(message)
        elif self._handshake is _Handshake.REFUSED and kind == "websocket.close":
            return
        else:
            raise RuntimeError(f"Unexpected ASGI message {kind!r} ({self._handshake.name})")

    async def _send_in_session(self, kind: str, message: Message) -> None:
        assert self._ws is not None
        if kind == "websocket.close":
            if self._close is None:  # after a disconnect, closing again is a no-op
                await self._close_now(message.get("code") or NORMAL, message.get("reason") or "")
            return
        if kind != "websocket.send":
            raise RuntimeError(f"Unexpected ASGI message {kind!r} on an open WebSocket")
        if self._close is not None or self._ws.state is not ConnectionState.OPEN:
            raise ClientDisconnected("the WebSocket is closed")
        data = message.get("bytes")
        event: WSMessage[Any] = (
            BytesMessage(data=data) if data is not None else TextMessage(message.get("text") or "")
        )
        if not await self._write(self._ws.send(event)):
            raise ClientDisconnected("the client is gone")

    # --- handshake ----------------------------------------------------------------------

    async def _accept(self, message: Message) -> None:
        assert self._ws is not None
        accept = AcceptConnection(
            subprotocol=message.get("subprotocol"),
            extra_headers=list(message.get("headers") or []),
            # Used only when the client offered it (RFC 7692).
            extensions=[PerMessageDeflate()],
        )
        if not await self._write(self._ws.send(accept)):
            raise ClientDisconnected("the client is gone")
        self._handshake = _Handshake.ACCEPTED
        self._log("accepted")
        group = self._group
        assert group is not None  # the app runs inside the session's task group
        group.start_soon(self._read_loop, self._conn.h11.trailing_data[0])
        group.start_soon(self._keepalive)
        if self._shutting_down:
            group.start_soon(self._close_now, SERVICE_RESTART, "server shutting down")

    async def _refuse(self, status: int) -> None:
        assert self._ws is not None
        self._handshake = _Handshake.REFUSED
        self._log(f"rejected {status}")
        await self._write(self._ws.send(RejectConnection(status_code=status)))

    async def _deny(self, message: Message) -> None:
        assert self._ws is not None
        if message["type"] == "websocket.http.response.start":
            self._handshake = _Handshake.DENYING
            self._log(f"denied {message['status']}")
            headers = list(message.get("headers", []))
            event: Event = RejectConnection(message["status"], headers, has_body=True)
        elif message["type"] == "websocket.http.response.body" and self._handshake is (
            _Handshake.DENYING
        ):
            more = bool(message.get("more_body", False))
            event = RejectData(message.get("body", b""), body_finished=not more)
            if not more:
                self._handshake = _Handshake.REFUSED
        else:
            raise RuntimeError(f"Unexpected ASGI message {message['type']!r} in a denial")
        await self._write(self._ws.send(event))

    # --- frames -------------------------------------------------------------------------

    async def _read_loop(self, trailing: bytes) -> None:
        assert self._ws is not None
        assembler = MessageAssembler(self._config.ws_max_size)
        data: bytes | None = trailing
        try:
            while await self._handle_data(data, assembler):
                data = await self._read()
        finally:
            self._end(ABNORMAL, "")
            self._reader_done.set()
        # The closing handshake is over (or the peer is gone): RFC 6455 section 7.1.1
        # has the server close TCP first, and now, even while the app's tasks still run.
        await self._stream.aclose()

    async def _read(self) -> bytes | None:
        """The next bytes; None when the peer is gone, or is slow to answer our Close."""
        try:
            if self._close is None:
                return await self._stream.receive(_READ_SIZE)
            with anyio.move_on_after(_CLOSE_WAIT):
                return await self._stream.receive(_READ_SIZE)
        except _STREAM_GONE:
            pass
        return None

    async def _handle_data(self, data: bytes | None, assembler: MessageAssembler) -> bool:
        """Feed ``data`` (None: the peer closed TCP) to wsproto; False when done reading."""
        assert self._ws is not None
        self._ws.receive_data(data)
        for event in self._ws.events():
            if isinstance(event, WSMessage):
                try:
                    whole = assembler.add(event)
                except MessageTooBig:
                    # Read on (discarding) until the client's Close, so the unread rest
                    # cannot make the kernel reset the connection before our Close lands.
                    await self._close_now(TOO_BIG, "message too big")
                    continue
                if whole is not None:
                    await self._inbox.put(whole)  # waits while the app is behind
            elif isinstance(event, Ping) and self._ws.state is ConnectionState.OPEN:
                await self._write(self._ws.send(event.response()))
            elif isinstance(event, Pong):
                self._pong.set()
            elif isinstance(event, CloseConnection):
                await self._closed_by_peer(event.code, event.reason or "")
                return False
        return data is not None

    async def _closed_by_peer(self, code: int, reason: str) -> None:
        assert self._ws is not None
        if self._ws.state is ConnectionState.REMOTE_CLOSING:
            await self._write(self._ws.send(CloseConnection(code=code, reason=reason)))
        self._end(code, reason)

    async def _close_now(self, code: int, reason: str) -> None:
        """Send our Close (bounded: a client that stopped reading cannot hold it up)."""
        assert self._ws is not None
        self._end(code, reason)
        if self._ws.state is ConnectionState.OPEN:
            data = self._ws.send(CloseConnection(code=code, reason=reason))
            with anyio.move_on_after(_CLOSE_WAIT) as waited:
                await self._write(data)
            if waited.cancelled_caught:
                await self._abort()

    def _end(self, code: int, reason: str) -> None:
        """The conversation is over: the app receives ``websocket.disconnect``."""
        if self._close is None:
            self._close = (code, reason)
        self._inbox.close()

    async def _keepalive(self) -> None:
        assert self._ws is not None
        interval, timeout = self._config.ws_ping_interval, self._config.ws_ping_timeout
        if not interval or not math.isfinite(interval):
            return
        while True:
            await anyio.sleep(interval)
            if self._ws.state is not ConnectionState.OPEN or self._close is not None:
                return
            self._pong = anyio.Event()
            await self._write(self._ws.send(Ping(payload=b"asgi-bg")))
            with anyio.move_on_after(timeout or math.inf) as waited:
                await self._pong.wait()
            if waited.cancelled_caught:
                logger.info("WebSocket %s: no pong within %ss; closing", self._path(), timeout)
                await self._close_now(INTERNAL_ERROR, "keepalive ping timeout")
                await self._abort()
                return

    # --- the socket ---------------------------------------------------------------------

    async def _write(self, data: bytes) -> bool:
        """Send bytes, one writer at a time; False when the client is gone."""
        if not data:
            return True
        async with self._lock:
            try:
                await self._stream.send(data)
            except _STREAM_GONE:
                return False
        return True

    async def _abort(self) -> None:
        """Drop the connection: wakes a send blocked on a client that stopped reading."""
        abort = getattr(self._stream, "abort", None)
        if abort is not None:
            abort()
        else:
            await self._stream.aclose()

    def _log(self, outcome: str) -> None:
        if self._config.access_log:
            client = self._http_scope.get("client")
            peer = f"{client[0]}:{client[1]}" if client else "-"
            access_logger.info('%s - "WebSocket %s" %s', peer, self._path(), outcome)

    def _path(self) -> str:
        return loggable_path(self._http_scope["path"])
