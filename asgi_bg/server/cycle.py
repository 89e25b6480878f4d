"""One request/response exchange: the ASGI `receive` and `send` of one HTTP request.

The connection owns the socket and the h11 state; a cycle turns the app's messages
into h11 events and tells the connection, through `attach`, the moment the response
is complete, which is usually long before the app returns (background tasks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import h11
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._types import Message, Scope
from ..datastructures import RequestLabel, loggable_path
from ._http import SERVER_HEADER, STATUS_PHRASES, date_cache
from .phase import Body, ExchangeState, Response
from .state import ServerState, access_logger, logger

if TYPE_CHECKING:
    from .connection import HTTPConnection

# Statuses whose responses never carry a body, so no `content-length` may be added
# for them (RFC 9110 §8.6, §15.3.5, §15.4.5).
_BODYLESS_STATUSES = frozenset({204, 304})


# The response will not change any more: `receive` reports the end, `run` is satisfied.
_FINISHED = frozenset({Response.COMPLETE, Response.GONE})


def _disconnect() -> Message:
    return {"type": "http.disconnect"}


def _misplaced(kind: str, phase: Response) -> str:
    if phase is Response.COMPLETE:
        return f"ASGI app sent {kind!r} after its response completed"
    if phase is Response.BROKEN:
        return f"ASGI app sent {kind!r} after its response broke off"
    if phase is Response.IDLE:
        return f"ASGI app sent {kind!r} before 'http.response.start'"
    return f"ASGI app sent {kind!r} twice"


class RequestCycle:
    """The ASGI side of one request; `run` is one ASGI call.

    Its state is an `ExchangeState` (see `phase.py`): every check below reads it, and
    every change goes through `_move`, `_body_read` or `_returned`.
    """

    __slots__ = (
        "_body_recv",
        "_conn",
        "_head",
        "_headers",
        "_on_done",
        "_phase",
        "_state",
        "_status",
        "_waiter",
        "body_send",
        "scope",
    )

    def __init__(
        self, conn: HTTPConnection, state: ServerState, scope: Scope, *, has_body: bool
    ) -> None:
        self.scope = scope
        self._conn = conn
        self._state = state
        self._head = scope["method"] == "HEAD"
        self._phase = ExchangeState(has_body=has_body)
        self._on_done: Callable[[], None] | None = None
        self._status = 0
        self._headers: list[Any] = []
        self._waiter: anyio.Event | None = None
        self.body_send: MemoryObjectSendStream[Message] | None = None
        self._body_recv: MemoryObjectReceiveStream[Message] | None = None
        if has_body:
            # Buffer 0: the connection reads the next chunk from the socket only once
            # the app took the previous one, so a slow app slows the client (backpressure).
            self.body_send, self._body_recv = anyio.create_memory_object_stream[Message](0)

    def describe(self) -> str:
        """`METHOD path` for log lines."""
        return str(RequestLabel(self.scope))

    @property
    def phase(self) -> Response:
        """Where the response is."""
        return self._phase.response

    @property
    def complete(self) -> bool:
        """The final body is written: the connection may serve its next request."""
        return self._phase.response is Response.COMPLETE

    @property
    def done(self) -> bool:
        """The connection may move on: the response completed or the call ended."""
        return self._phase.done

    # -- the ASGI call ------------------------------------------------------------

    async def run(self) -> None:
        """Call the app once; whatever it does, the server keeps serving."""
        requests = self._state.requests
        requests.add(self)
        try:
            await self._state.app(self.scope, self.receive, self.send)
        except Exception:
            logger.exception("Exception in ASGI application while serving %s", self.describe())
            await self._answer_failure()
        else:
            if self.phase not in _FINISHED:
                what = "starting" if self.phase is Response.IDLE else "completing"
                logger.error(
                    "ASGI application returned without %s its response to %s",
                    what,
                    self.describe(),
                )
                await self._answer_failure()
        finally:
            requests.discard(self)
            if self._body_recv is not None:
                self._body_recv.close()
            self._returned()

    async def _answer_failure(self) -> None:
        # While no byte of the response is out the server can still answer 500 (the
        # head is held back until the first body message); after that the framing
        # cannot be finished, so the only honest signal is closing.
        phase = self.phase
        if phase in _FINISHED or phase is Response.BROKEN:
            return
        if phase is Response.SENDING or self._conn.h11.our_state is h11.ERROR:
            self._move(Response.BROKEN)
            return
        self._move(Response.SENDING)  # the server's answer: a late `take_over` must fail
        if not await self._conn.write_simple(500, head=self._head, close=False):
            self.disconnect()
        elif self.phase is Response.SENDING:
            self._complete(500)

    # -- connection side ----------------------------------------------------------

    def attach(self, on_done: Callable[[], None]) -> None:
        """Call `on_done` once the connection may stop waiting for this response
        (at once if it already may); replaces the previous callback."""
        self._on_done = on_done
        if self._phase.done:
            on_done()

    def disconnect(self) -> None:
        """The client went away: pending and later `receive` calls see `http.disconnect`."""
        if self._phase.can(Response.GONE):
            self._move(Response.GONE)
        if self.body_send is not None:
            self.body_send.close()
        self._wake_receivers()

    def take_over(self) -> bool:
        """Let the server answer (413, 400) if the app has not started its response.

        The app then sees a disconnect and its messages are dropped. Otherwise the
        response can no longer be finished properly and the connection closes.
        """
        phase = self.phase
        if phase is Response.IDLE:
            self._move(Response.GONE)  # the connection calls `disconnect` once it answered
            return True
        if phase is Response.STARTED or phase is Response.SENDING:
            self._move(Response.BROKEN)
        return False

    def _move(self, to: Response) -> None:
        self._phase.move(to)
        if to is Response.COMPLETE:
            self._wake_receivers()
            if not self._phase.returned:
                self._signal_done()
        elif to is Response.GONE:
            self._wake_receivers()

    def _returned(self) -> None:
        self._phase.returned = True
        if self._phase.response is not Response.COMPLETE:
            self._signal_done()  # the first moment the exchange is done: complete, or this

    def _signal_done(self) -> None:
        if self._on_done is not None:
            self._on_done()

    def _wake_receivers(self) -> None:
        if self._waiter is not None:
            self._waiter.set()

    # -- receive ------------------------------------------------------------------

    async def receive(self) -> Message:
        """ASGI `receive`: the body in `http.request` chunks, then `http.disconnect`."""
        body = self._phase.body
        if body is Body.EMPTY:
            self._phase.body_read()
            return {"type": "http.request", "body": b"", "more_body": False}
        if body is Body.STREAMING and self.phase not in _FINISHED:
            return await self._receive_body()
        return await self._wait_for_end()

    async def _receive_body(self) -> Message:
        assert self._body_recv is not None
        if self.phase is Response.IDLE and self._conn.h11.they_are_waiting_for_100_continue:
            # RFC 9110 §10.1.1: the client holds the body back until told to go on;
            # the app asking for it is that signal.
            await self._conn.send_continue()
        try:
            message = await self._body_recv.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return _disconnect()
        if not message["more_body"]:
            self._phase.body_read()
        return message

    async def _wait_for_end(self) -> Message:
        # ASGI HTTP spec: once the body is read, `receive` blocks until the client
        # disconnects or the response is done, then reports `http.disconnect`.
        if self.phase not in _FINISHED:
            if self._waiter is None:
                self._waiter = anyio.Event()
            await self._waiter.wait()
        return _disconnect()

    # -- send ---------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """ASGI `send`: `http.response.start`, then `http.response.body` chunks."""
        if self.phase is Response.GONE:
            # Spec 2.3: messages to a closed connection are dropped. Still a checkpoint:
            # an app streaming from a generator that never awaits would otherwise spin
            # through it without letting its own disconnect watcher run.
            await anyio.lowlevel.checkpoint()
            return
        kind = message["type"]
        if kind == "http.response.body":
            await self._send_body(message)
        elif kind == "http.response.start":
            self._start(message)
        else:
            raise RuntimeError(f"Unexpected ASGI message {kind!r} for an HTTP request")

    def _start(self, message: Message) -> None:
        if self.phase is not Response.IDLE:
            raise RuntimeError(_misplaced("http.response.start", self.phase))
        status = message["status"]
        if not isinstance(status, int) or not 200 <= status <= 999:
            raise RuntimeError(f"ASGI app sent an invalid response status {status!r}")
        self._status = status
        self._headers = list(message.get("headers", ()))
        self._move(Response.STARTED)

    async def _send_body(self, message: Message) -> None:
        phase = self.phase
        if phase is not Response.STARTED and phase is not Response.SENDING:
            raise RuntimeError(_misplaced("http.response.body", phase))
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        out = self._encode(body, more)
        if phase is Response.STARTED:
            self._move(Response.SENDING)
        if not await self._conn.write(out):
            self.disconnect()
        elif not more and self.phase is Response.SENDING:
            self._complete(self._status)

    def _encode(self, body: bytes, more: bool) -> bytes:
        """The bytes of one body message (with the head before the first one)."""
        try:
            return self._encode_message(body, more)
        except (h11.LocalProtocolError, TypeError, ValueError) as exc:
            # h11 checks a head before its state changes: a bad header leaves nothing
            # sent, so the server can still answer 500. A body h11 refuses (more than
            # the declared length) has changed its state: only closing is left.
            if self._conn.h11.our_state is h11.ERROR:
                self._move(Response.BROKEN)
            raise RuntimeError(f"ASGI app sent an invalid response: {exc}") from exc

    def _encode_message(self, body: bytes, more: bool) -> bytes:
        # PERF: the head is held back until the first body message so head and body
        # leave in one write, and a single-message body gets a content-length instead
        # of chunked framing.
        conn = self._conn.h11
        out = b""
        if self.phase is Response.STARTED:
            out = self._encode_head(None if more else len(body))
        if body and not self._head:  # RFC 9110 §9.3.2: HEAD answers carry no content
            out += conn.send(h11.Data(data=body)) or b""
        if not more:
            out += conn.send(h11.EndOfMessage()) or b""
        return out

    def _encode_head(self, length: int | None) -> bytes:
        headers = list(self._headers)  # a copy: a refused head may be retried
        names = _header_names(headers)
        if (
            length is not None
            and not self._head
            and self._status not in _BODYLESS_STATUSES
            and b"content-length" not in names
            and b"transfer-encoding" not in names
        ):
            headers.append((b"content-length", str(length).encode("ascii")))
        if b"server" not in names:
            headers.append(SERVER_HEADER)
        if b"date" not in names:
            headers.append(date_cache.header())
        if self._conn.closing:
            headers.append((b"connection", b"close"))
        status = self._status
        reason = STATUS_PHRASES.get(status, b"")
        event = h11.Response(status_code=status, headers=headers, reason=reason)
        return self._conn.h11.send(event) or b""

    def _complete(self, status: int) -> None:
        if self._state.config.access_log:
            self._log_access(status)
        self._move(Response.COMPLETE)

    def _log_access(self, status: int) -> None:
        scope = self.scope
        client = scope.get("client")
        peer = f"{client[0]}:{client[1]}" if client else "-"
        query = scope["query_string"]
        path = loggable_path(scope["path"])
        target = f"{path}?{query.decode('latin-1')}" if query else path
        access_logger.info(
            '%s - "%s %s HTTP/%s" %d %s',
            peer,
            scope["method"],
            target,
            scope["http_version"],
            status,
            _PHRASES.get(status, ""),
        )


_PHRASES = {status.value: status.phrase for status in HTTPStatus}


def _header_names(headers: Iterable[Any]) -> set[bytes]:
    return {bytes(name).lower() for name, _ in headers}
