"""HTTP/1.1 over any anyio byte stream: h11 on the wire, ASGI calls on the other side.

The shape follows h11's `examples/trio-server.py`: one task reads, h11 parses, errors
become a simple response only while none has started, keep-alive goes through
`start_next_cycle()`, clean-up is bounded. The difference that matters here: each
request's ASGI call runs in this connection's task group and the loop moves on as
soon as the *response* is complete, while the call (its background work) goes on.
"""

from __future__ import annotations

import math
import time
from typing import Any
from urllib.parse import unquote

import anyio
import h11
from anyio.abc import ByteStream, SocketAttribute
from anyio.streams.memory import MemoryObjectSendStream

from .._types import Message, Scope
from ._http import ASGI_VERSION, HTTP_SPEC_VERSION, simple_response
from .calls import CallRunner
from .config import ServerConfig
from .cycle import RequestCycle
from .phase import Response
from .refusals import error_status, head_size, malformed, split_target
from .state import ServerState, logger
from .websocket import WebSocketSession, is_websocket_upgrade

_READ_SIZE = 64 * 1024
# How long a closing connection waits for the client to read the last response and
# close its side (see `_linger`).
_LINGER = 2.0
# Body data already parsed is handed to the app in messages of up to about this size.
_COALESCE = _READ_SIZE
_STREAM_GONE = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError)
# RFC 9112 §2.2: empty lines before a request line are skipped, up to this many.
_EMPTY_LINES_IGNORED = 8
# What h11 says when a request starts with an empty line (h11/_readers.py).
_H11_EMPTY_LINE = "no request line received"
_FINAL_EMPTY_BODY: Message = {"type": "http.request", "body": b"", "more_body": False}


class HTTPConnection:
    """Serves the requests of one client connection, in order, until it closes."""

    def __init__(self, stream: ByteStream, state: ServerState) -> None:
        self._stream = stream
        self._state = state
        self.h11 = h11.Connection(
            h11.SERVER, max_incomplete_event_size=state.config.max_header_size
        )
        self.closing = state.shutting_down  # answer with `Connection: close`, then stop
        self._eof = False
        self._current: RequestCycle | None = None  # the latest exchange
        self._upgraded: WebSocketSession | None = None  # the socket now speaks WebSocket
        self._wait_scope: anyio.CancelScope | None = None  # cancelled: stop serving
        # When an idle connection expires (see `idle.py`); `inf` while a request is on.
        self.idle_deadline = time.monotonic() + state.config.header_timeout
        # When the write under way has waited too long for the client (see `write`).
        self.send_deadline = math.inf
        self._send_expired = False
        self._done_event: anyio.Event | None = None  # only when the read-ahead is full
        self._server_addr = _address(stream.extra(SocketAttribute.local_address, None))
        self._client_addr = _address(stream.extra(SocketAttribute.remote_address, None))

    def expire(self, now: float) -> None:
        """Close the connection if it has been idle past its deadline, or a write has
        waited past `send_timeout` for the client to read (`now`: `time.monotonic`)."""
        if self._wait_scope is None:
            return
        if now >= self.send_deadline:
            logger.debug("Dropping connection from %s: it reads nothing", self._client_addr)
            self._send_expired = True
            self._wait_scope.cancel()
        elif now >= self.idle_deadline:
            self._wait_scope.cancel()

    def shutdown(self) -> None:
        """Graceful shutdown: an idle connection closes now, a busy one after its response."""
        self.closing = True
        if self._upgraded is not None:
            self._upgraded.shutdown()
        elif self._wait_scope is not None and self._idle():
            self._wait_scope.cancel()

    async def run(self) -> None:
        """Serve requests until the connection ends, then wait for the ASGI calls."""
        self._state.connections.add(self)
        try:
            await self._run()
        finally:
            self._state.connections.discard(self)

    async def _run(self) -> None:
        async with anyio.create_task_group() as group:
            calls = CallRunner(group)
            try:
                await self._serve(calls)
            except BaseException:
                # Cancelled (forced shutdown) or broken: close without lingering.
                with anyio.CancelScope(shield=True):
                    await self._stream.aclose()
                raise
            finally:
                calls.close()
                if self._current is not None:
                    self._current.disconnect()  # a running app must not wait for more
            with anyio.CancelScope(shield=True):
                await self._close()

    async def _serve(self, calls: CallRunner) -> None:
        # One scope for the whole connection: idle expiry and shutdown cancel it.
        with anyio.CancelScope() as scope:
            self._wait_scope = scope
            try:
                while await self._await_next_request():
                    self.idle_deadline = math.inf
                    request = await self._read_request()
                    if request is None or not await self._respond(calls, request):
                        return
            finally:
                self._wait_scope = None

    # -- between requests -----------------------------------------------------------

    def _idle(self) -> bool:
        return self._current is None or self._current.done

    def _reusable(self, cycle: RequestCycle) -> bool:
        return (
            cycle.phase is Response.COMPLETE
            and self.h11.our_state is h11.DONE
            and self.h11.their_state is h11.DONE
        )

    async def _await_next_request(self) -> bool:
        """Wait for the next request's first bytes; False when the connection should close.

        PERF: the read for the next request starts while the previous response is
        still being produced. It notices a disconnect (ASGI `http.disconnect`) and
        picks up pipelined requests, and when the response completes it simply goes on
        as the keep-alive wait: no cancellation and no timer per request, only a
        deadline number that `idle.expire_idle_connections` checks.
        """
        if self._current is not None:
            self._current.attach(self._exchange_done)
        return await self._read_ahead()

    def _exchange_done(self) -> None:
        # Called once, as the current response completes (or its call ends).
        if self._done_event is not None:
            self._done_event.set()
        scope = self._wait_scope
        if scope is None:
            return
        cycle = self._current
        if self.closing or cycle is None or not self._reusable(cycle):
            scope.cancel()
        else:  # RFC 9112 §9.5: idle keep-alive connections may be closed at any time
            self.idle_deadline = time.monotonic() + self._state.config.keep_alive

    async def _read_ahead(self) -> bool:
        cycle = self._current
        buffered = len(self.h11.trailing_data[0])
        while True:
            if cycle is None or cycle.done:
                if buffered:
                    return self._start_next_cycle(cycle)
            elif buffered:
                # RFC 9112 §9.3.2: a pipelined request waits, unread past one receive,
                # until the response before it is complete.
                await self._wait_done(cycle)
                continue
            received = await self._receive()
            if not received:
                if cycle is not None:
                    cycle.disconnect()
                return False
            buffered += received

    def _start_next_cycle(self, cycle: RequestCycle | None) -> bool:
        if cycle is None:
            return True
        if not self._reusable(cycle):
            return False
        self.h11.start_next_cycle()
        return True

    async def _wait_done(self, cycle: RequestCycle) -> None:
        self._done_event = anyio.Event()
        try:
            if not cycle.done:
                await self._done_event.wait()
        finally:
            self._done_event = None

    # -- reading ------------------------------------------------------------------

    async def _receive(self) -> int:
        """Read once into h11; 0 means the client closed its side."""
        try:
            data = await self._stream.receive(_READ_SIZE)
        except _STREAM_GONE:
            data = b""
            self._eof = True
        self.h11.receive_data(data)
        return len(data)

    async def _next_event(self) -> Any:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            await self._receive()

    async def _next_body_event(self, pace: _BodyPace) -> Any:
        """`_next_event` for a request body: TimeoutError once the client has sent
        nothing for `body_timeout` seconds (RFC 9110 §15.5.9, 408) or has kept us
        waiting longer than its minimum rate allows, unless it is waiting for our
        `100 Continue`, which is not its delay but the app's."""
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            start = time.monotonic()
            with anyio.move_on_after(min(self._state.config.body_timeout, pace.allowance())) as w:
                await self._receive()
            if self.h11.they_are_waiting_for_100_continue:
                continue
            pace.waited += time.monotonic() - start
            if w.cancelled_caught:
                raise TimeoutError

    async def _read_request(self) -> h11.Request | None:
        for _ in range(_EMPTY_LINES_IGNORED + 1):
            try:
                event = self.h11.next_event()
                if event is h11.NEED_DATA:  # PERF: a head that came whole needs no timer
                    with anyio.fail_after(self._state.config.header_timeout):
                        event = await self._next_event()
            except TimeoutError:
                logger.debug("Closing connection from %s: request head too slow", self._client_addr)
                return None
            except h11.RemoteProtocolError as exc:
                if str(exc) == _H11_EMPTY_LINE:
                    self._restart_parser()
                    continue
                # Malformed (400) or too large (431, h11's max_incomplete_event_size).
                await self.write_simple(error_status(exc), close=True)
                return None
            return event if isinstance(event, h11.Request) else None
        await self.write_simple(400, close=True)  # a stream of empty lines is no request
        return None

    def _restart_parser(self) -> None:
        # RFC 9112 §2.2: a server SHOULD ignore empty lines before a request line. h11
        # consumes the empty line, then refuses; between requests nothing else of its
        # state matters, so a fresh parser takes over the bytes that follow.
        leftover, closed = self.h11.trailing_data
        self.h11 = h11.Connection(
            h11.SERVER, max_incomplete_event_size=self._state.config.max_header_size
        )
        self.h11.receive_data(leftover)
        if closed:
            self.h11.receive_data(b"")

    # -- one request ----------------------------------------------------------------

    async def _respond(self, calls: CallRunner, request: h11.Request) -> bool:
        """Start one exchange; False when the connection should close at once."""
        head = request.method == b"HEAD"
        try:
            first = self.h11.next_event()  # bodyless requests end right here
        except h11.RemoteProtocolError as exc:
            await self.write_simple(error_status(exc), close=True, head=head)
            return False
        has_body = not isinstance(first, h11.EndOfMessage)
        authority, path, query = split_target(request.target)
        refusal = malformed(request, authority) or self._refusal(request, has_body)
        if refusal:
            await self.write_simple(refusal, close=True, head=head)
            return False
        scope = self._scope(request, authority, path, query)
        if is_websocket_upgrade(request):  # the connection is the WebSocket's from here
            self._upgraded = WebSocketSession(self, self._stream, self._state, request, scope)
            await self._upgraded.run()
            return False
        cycle = RequestCycle(self, self._state, scope, has_body=has_body)
        self._current = cycle
        calls.submit(cycle)
        if cycle.body_send is None:
            return True
        with anyio.CancelScope() as cancel:
            cycle.attach(cancel.cancel)  # answered before the body was read: stop reading
            return await self._pump_body(cycle, cycle.body_send, first)
        return True  # the response is done; what is left of the body decides reuse

    def _refusal(self, request: h11.Request, has_body: bool) -> int:
        if self._state.over_capacity():
            return 503
        if head_size(request) > self._state.config.max_header_size:
            # h11's own limit only sees heads still incomplete after a read; a large head
            # that arrived in one read is measured here (RFC 6585 section 5).
            return 431
        if not has_body:
            return 0
        for name, value in request.headers:
            # RFC 9110 §15.5.14: refuse a declared oversize body before reading it
            # (and before any `100 Continue`).
            if name == b"content-length" and int(value) > self._state.config.max_body:
                return 413
        return 0

    async def _pump_body(
        self, cycle: RequestCycle, sink: MemoryObjectSendStream[Message], event: Any
    ) -> bool:
        """Hand the request body to the app chunk by chunk; False if the exchange failed."""
        try:
            with sink:  # closed whatever happens: an app still waiting sees a disconnect
                return await self._pump_chunks(cycle, sink, event)
        except h11.RemoteProtocolError as exc:
            if self._eof:  # the client left halfway through its body
                cycle.disconnect()
                return False
            return await self._refuse_body(cycle, exc.error_status_hint)
        except TimeoutError:
            logger.debug("Request body from %s stalled or too slow: 408", self._client_addr)
            return await self._refuse_body(cycle, 408)

    async def _pump_chunks(
        self, cycle: RequestCycle, sink: MemoryObjectSendStream[Message], event: Any
    ) -> bool:
        pace = _BodyPace(self._state.config)
        while not isinstance(event, h11.EndOfMessage):
            if not isinstance(event, h11.Data):
                event = await self._next_body_event(pace)
                continue
            chunk, event = self._coalesce(event)
            pace.received += len(chunk)
            if pace.received > self._state.config.max_body:
                return await self._refuse_body(cycle, 413)
            # PERF: a body already complete in the buffer reaches the app as one
            # final message instead of a chunk plus an empty final one.
            final = isinstance(event, h11.EndOfMessage)
            await sink.send({"type": "http.request", "body": chunk, "more_body": not final})
            if final:
                return True
        await sink.send(dict(_FINAL_EMPTY_BODY))
        return True

    def _coalesce(self, event: h11.Data) -> tuple[bytes, Any]:
        """The bytes of `event` and of the body data already parsed after it (up to
        `_COALESCE` bytes), and the event that follows them.

        PERF: a body sent as one-byte chunks cost 50-60 µs of CPU per chunk when each
        chunk was a message to the app (a task switch each way); joined here, what is
        left is about h11's parsing, 11-13 µs a chunk (`python -m benchmarks.body_chunks`).
        """
        chunk = bytes(event.data)
        following = self.h11.next_event()
        if not isinstance(following, h11.Data):
            return chunk, following  # the usual case: one read, one piece
        parts = [chunk]
        size = len(chunk)
        while isinstance(following, h11.Data) and size < _COALESCE:
            parts.append(following.data)
            size += len(following.data)
            following = self.h11.next_event()
        return b"".join(parts), following

    async def _refuse_body(self, cycle: RequestCycle, status: int) -> bool:
        # Too large (413) or badly framed (400) halfway through: answer in the app's
        # place if it has not started, otherwise the connection just closes.
        if cycle.take_over():
            # Shielded (and bounded): the app may return meanwhile, which cancels the
            # scope of this exchange, and the answer must still go out whole.
            with anyio.CancelScope(shield=True), anyio.move_on_after(_LINGER):
                await self.write_simple(status, close=True, head=cycle.scope["method"] == "HEAD")
        return False

    def _scope(
        self, request: h11.Request, authority: bytes | None, raw_path: bytes, query: bytes
    ) -> Scope:
        headers = list(request.headers)
        if authority is not None:
            # RFC 9112 §3.2.2: with an absolute-form target the target's host is the
            # one that counts; the Host header is replaced, so `request.url` shows it.
            headers = [(b"host", authority), *((n, v) for n, v in headers if n != b"host")]
        root = self._state.config.root_path
        # h11 only lets visible ASCII through in the target, so ascii cannot fail.
        return {
            "type": "http",
            "asgi": {"version": ASGI_VERSION, "spec_version": HTTP_SPEC_VERSION},
            # RFC 9110 §2.5: a higher 1.x minor version is served as 1.1.
            "http_version": "1.0" if request.http_version == b"1.0" else "1.1",
            "server": self._server_addr,
            "client": self._client_addr,
            "scheme": "http",
            "method": request.method.decode("ascii"),
            "root_path": root,
            # ASGI: `path` includes `root_path` (the spec's clarified reading, as uvicorn).
            "path": root + unquote(raw_path.decode("ascii")),
            "raw_path": root.encode("ascii") + raw_path,
            "query_string": query,
            "headers": headers,
            "state": self._state.lifespan_state.copy(),
        }

    # -- writing ------------------------------------------------------------------

    async def write(self, data: bytes) -> bool:
        """Send bytes; False when the client is gone."""
        if not data:
            return True
        # PERF: no timer per write; the idle sweep checks this deadline (`expire`).
        self.send_deadline = time.monotonic() + self._state.config.send_timeout
        try:
            await self._stream.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return False
        finally:
            self.send_deadline = math.inf
        return True

    async def write_simple(self, status: int, *, close: bool, head: bool = False) -> bool:
        """Answer with a short plain-text response of the server's own."""
        if self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return False
        try:
            data = simple_response(self.h11, status, close=close, head=head)
        except h11.LocalProtocolError:
            return False
        return await self.write(data)

    async def send_continue(self) -> None:
        """RFC 9110 §15.2.1: `100 Continue` tells the client to send the body."""
        event = h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")
        await self.write(self.h11.send(event) or b"")

    # -- closing ------------------------------------------------------------------

    async def _close(self) -> None:
        if self._send_expired:
            # The client reads nothing: drop what is unsent rather than keep it
            # buffered for ever (the asyncio stream can; closing does it on trio).
            abort = getattr(self._stream, "abort", None)
            if abort is not None:
                abort()
        else:
            with anyio.move_on_after(_LINGER):
                await self._linger()
        await self._stream.aclose()

    async def _linger(self) -> None:
        # RFC 9112 §9.6: after a response, half-close and read until the client closes,
        # so request bytes we never read cannot make the kernel reset the connection and
        # destroy the response still in flight. Idle, or no whole response: skip.
        if self._eof or self.h11.our_state not in (h11.DONE, h11.MUST_CLOSE):
            return
        try:
            await self._stream.send_eof()
            while True:
                await self._stream.receive(_READ_SIZE)
        except (*_STREAM_GONE, OSError):
            return


class _BodyPace:
    """How long a client has kept us waiting for its body, against what it sent.

    Only time spent waiting on the socket counts: while the app is slow to take the
    body (backpressure) the client is not to blame.
    """

    __slots__ = ("_grace", "_rate", "received", "waited")

    def __init__(self, config: ServerConfig) -> None:
        self._rate = config.body_min_rate
        self._grace = config.body_rate_grace
        self.received = 0
        self.waited = 0.0

    def allowance(self) -> float:
        """Seconds the client may still keep us waiting (no end without a minimum rate)."""
        if not self._rate:
            return math.inf
        return self._grace + self.received / self._rate - self.waited


def _address(value: object) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return (str(value[0]), int(value[1]))
    return None
