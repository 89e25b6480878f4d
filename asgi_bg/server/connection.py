"""HTTP/1.1 over any anyio byte stream: h11 on the wire, ASGI calls on the other side.

The shape follows h11's `examples/trio-server.py`: one task reads, h11 parses, errors
become a simple response only while none has started, keep-alive goes through
`start_next_cycle()`, clean-up is bounded. The difference that matters here: each
request's ASGI call runs in this connection's task group and the loop moves on as
soon as the *response* is complete, while the call (its background work) goes on.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import anyio
import h11
from anyio.abc import ByteStream, SocketAttribute, TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from .._types import Message, Scope
from ._http import ASGI_VERSION, HTTP_SPEC_VERSION, simple_response
from .cycle import RequestCycle
from .state import ServerState, logger

_READ_SIZE = 64 * 1024
# RFC 9112 §9.3.2 lets clients pipeline. While a response is in progress the
# connection keeps reading (that is how it notices a disconnect) but buffers at most
# this much of the next requests before it waits for the response to finish.
_PIPELINE_LIMIT = 64 * 1024
# How long a closing connection waits for the client to read the last response and
# close its side (see `_linger`).
_LINGER = 2.0
_STREAM_GONE = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError)
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
        self._idle_scope: anyio.CancelScope | None = None
        self._server_addr = _address(stream.extra(SocketAttribute.local_address, None))
        self._client_addr = _address(stream.extra(SocketAttribute.remote_address, None))

    def shutdown(self) -> None:
        """Graceful shutdown: an idle connection closes now, a busy one after its response."""
        self.closing = True
        if self._idle_scope is not None:
            self._idle_scope.cancel()

    async def run(self) -> None:
        """Serve requests until the connection ends, then wait for the ASGI calls."""
        async with anyio.create_task_group() as calls:
            try:
                await self._serve(calls)
            except BaseException:
                # Cancelled (forced shutdown) or broken: close without lingering.
                with anyio.CancelScope(shield=True):
                    await self._stream.aclose()
                raise
            with anyio.CancelScope(shield=True):
                await self._close()

    async def _serve(self, calls: TaskGroup) -> None:
        idle_timeout = self._state.config.header_timeout
        while not self.closing:
            request = await self._read_request(idle_timeout)
            if request is None or not await self._respond(calls, request):
                return
            self.h11.start_next_cycle()
            idle_timeout = self._state.config.keep_alive

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

    async def _wait_for_data(self, idle_limit: float) -> bool:
        # Idle between requests: the keep-alive timeout applies, and shutdown may
        # cancel the wait (RFC 9112 §9.5 lets a server close idle connections).
        with anyio.move_on_after(idle_limit) as scope:
            self._idle_scope = scope
            try:
                return not self.closing and await self._receive() > 0
            finally:
                self._idle_scope = None
        return False

    async def _read_request(self, idle_timeout: float) -> h11.Request | None:
        if not self.h11.trailing_data[0] and not await self._wait_for_data(idle_timeout):
            return None
        try:
            with anyio.fail_after(self._state.config.header_timeout):
                event = await self._next_event()
        except TimeoutError:
            logger.debug("Closing connection from %s: request head too slow", self._client_addr)
            return None
        except h11.RemoteProtocolError as exc:
            # Malformed (400) or too large (431, h11's max_incomplete_event_size).
            await self.write_simple(exc.error_status_hint, close=True)
            return None
        return event if isinstance(event, h11.Request) else None

    # -- one request ----------------------------------------------------------------

    async def _respond(self, calls: TaskGroup, request: h11.Request) -> bool:
        """Run one exchange; True when the connection can serve another request."""
        head = request.method == b"HEAD"
        refusal = self._refusal(request)
        if refusal:
            await self.write_simple(refusal, close=True, head=head)
            return False
        try:
            first = self.h11.next_event()  # bodyless requests end right here
        except h11.RemoteProtocolError as exc:
            await self.write_simple(exc.error_status_hint, close=True, head=head)
            return False
        has_body = not isinstance(first, h11.EndOfMessage)
        cycle = RequestCycle(self, self._state, self._scope(request), has_body=has_body)
        calls.start_soon(cycle.run)
        with anyio.CancelScope() as scope:
            cycle.attach(scope.cancel)  # the response is complete: stop reading for it
            await self._follow(cycle, first)
        reusable = (
            not (cycle.gone or cycle.must_close)
            and self.h11.our_state is h11.DONE
            and self.h11.their_state is h11.DONE
        )
        if not reusable:
            cycle.disconnect()  # a running app must not wait forever for more body
        return reusable

    def _refusal(self, request: h11.Request) -> int:
        if self._state.over_capacity():
            return 503
        for name, value in request.headers:
            # RFC 9110 §15.5.14: refuse a declared oversize body before reading it
            # (and before any `100 Continue`).
            if name == b"content-length" and int(value) > self._state.config.max_body:
                return 413
        return 0

    async def _follow(self, cycle: RequestCycle, first: Any) -> None:
        if cycle.body_send is not None and not await self._pump_body(cycle, cycle.body_send, first):
            return
        await self._watch(cycle)

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

    async def _pump_chunks(
        self, cycle: RequestCycle, sink: MemoryObjectSendStream[Message], event: Any
    ) -> bool:
        received = 0
        while not isinstance(event, h11.EndOfMessage):
            if not isinstance(event, h11.Data):
                event = await self._next_event()
                continue
            chunk = bytes(event.data)
            received += len(chunk)
            if received > self._state.config.max_body:
                return await self._refuse_body(cycle, 413)
            event = self.h11.next_event()
            # PERF: a body already complete in the buffer reaches the app as one
            # final message instead of a chunk plus an empty final one.
            final = isinstance(event, h11.EndOfMessage)
            await sink.send({"type": "http.request", "body": chunk, "more_body": not final})
            if final:
                return True
        await sink.send(dict(_FINAL_EMPTY_BODY))
        return True

    async def _refuse_body(self, cycle: RequestCycle, status: int) -> bool:
        # Too large (413) or badly framed (400) halfway through: answer in the app's
        # place if it has not started, otherwise the connection just closes.
        if cycle.take_over():
            # Shielded (and bounded): the app may return meanwhile, which cancels the
            # scope of this exchange, and the answer must still go out whole.
            with anyio.CancelScope(shield=True), anyio.move_on_after(_LINGER):
                await self.write_simple(status, close=True, head=cycle.scope["method"] == "HEAD")
        return False

    async def _watch(self, cycle: RequestCycle) -> None:
        """Read ahead until the response completes (this scope is then cancelled)."""
        buffered = len(self.h11.trailing_data[0])
        while buffered < _PIPELINE_LIMIT:
            received = await self._receive()
            if not received:
                cycle.disconnect()  # ASGI: the app learns through `http.disconnect`
                return
            buffered += received
        await anyio.sleep_forever()

    def _scope(self, request: h11.Request) -> Scope:
        raw_path, _, query = request.target.partition(b"?")
        if not raw_path.startswith(b"/") and b"://" in raw_path:
            # RFC 9112 §3.2.2: absolute-form targets must be accepted; keep the path.
            parts = raw_path.split(b"/", 3)
            raw_path = b"/" + (parts[3] if len(parts) > 3 else b"")
        root = self._state.config.root_path
        # h11 only lets visible ASCII through in the target, so ascii cannot fail.
        return {
            "type": "http",
            "asgi": {"version": ASGI_VERSION, "spec_version": HTTP_SPEC_VERSION},
            "http_version": request.http_version.decode("ascii"),
            "server": self._server_addr,
            "client": self._client_addr,
            "scheme": "http",
            "method": request.method.decode("ascii"),
            "root_path": root,
            # ASGI: `path` includes `root_path` (the spec's clarified reading, as uvicorn).
            "path": root + unquote(raw_path.decode("ascii")),
            "raw_path": root.encode("ascii") + raw_path,
            "query_string": query,
            "headers": list(request.headers),
            "state": self._state.lifespan_state.copy(),
        }

    # -- writing ------------------------------------------------------------------

    async def write(self, data: bytes) -> bool:
        """Send bytes; False when the client is gone."""
        if not data:
            return True
        try:
            await self._stream.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return False
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


def _address(value: object) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return (str(value[0]), int(value[1]))
    return None
