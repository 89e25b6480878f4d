"""A bare WebSocket client on wsproto and anyio, for what a library client hides:
fragments, unanswered pings, a client that stops reading. Runs on asyncio and trio."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import anyio
from anyio.abc import ByteStream
from wsproto import ConnectionType, WSConnection
from wsproto.events import CloseConnection, Event, Ping, Request

STEP_LIMIT = 5.0


class RawClient:
    """One client connection: send wsproto events, read them back one at a time."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self._events: deque[Event] = deque()
        self.answer_pings = True

    async def send(self, event: Event) -> None:
        await self.stream.send(self.ws.send(event))

    async def next_event(self) -> Event:
        """The next event (pings are answered and skipped unless ``answer_pings`` is off)."""
        with anyio.fail_after(STEP_LIMIT):
            while True:
                while self._events:
                    event = self._events.popleft()
                    if isinstance(event, Ping) and self.answer_pings:
                        await self.send(event.response())
                        continue
                    return event
                try:
                    data: bytes | None = await self.stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    data = None
                self.ws.receive_data(data)
                self._events.extend(self.ws.events())

    async def closed(self) -> CloseConnection:
        """Read until the server's Close; other events are skipped."""
        while True:
            event = await self.next_event()
            if isinstance(event, CloseConnection):
                return event


@asynccontextmanager
async def ws_connect(
    port: int, path: str, subprotocols: Sequence[str] = ()
) -> AsyncIterator[tuple[RawClient, Event]]:
    """Connect and hand over the client with the server's answer to the handshake."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        client = RawClient(stream)
        await client.send(Request(host="t", target=path, subprotocols=list(subprotocols)))
        answer = await client.next_event()
        yield client, answer
