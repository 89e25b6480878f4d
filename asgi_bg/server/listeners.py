"""Where connections come from: anyio's TCP listener, or asyncio's server on asyncio.

Both bind at once (so a busy port fails before lifespan startup), start accepting only
when asked, and hand every connection as an `anyio.abc.ByteStream` to a handler run
in the caller's task group.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, cast

import anyio
from anyio.abc import ByteStream, SocketAttribute, SocketListener, TaskGroup
from anyio.streams.stapled import MultiListener

from ._asyncio_stream import AsyncioByteStream, StreamProtocol
from .state import logger

Handler = Callable[[ByteStream], Coroutine[Any, Any, None]]

# Pending connections the kernel queues before accepting (asyncio's default is 100;
# this is uvicorn's, and anyio's listener asks for more still).
_BACKLOG = 2048
# After an accept error such as EMFILE (too many open files), wait this long before
# accepting again instead of spinning.
_ACCEPT_BACKOFF = 0.1


class Listening(Protocol):
    """A bound socket that accepts once `start` is called, until `aclose`."""

    port: int

    async def start(self, connections: TaskGroup, handler: Handler) -> None: ...

    async def aclose(self) -> None: ...


async def open_listening(host: str, port: int) -> Listening:
    """Bind `host:port` (0: any free port) with the fastest listener for this backend."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # not asyncio: trio
        return await AnyioListening.bind(host, port)
    return await AsyncioListening.bind(host, port)


class AnyioListening:
    """anyio's listener; one accept loop per bound socket."""

    def __init__(self, listener: MultiListener[anyio.abc.SocketStream]) -> None:
        self._listener = listener
        self._scope = anyio.CancelScope()
        self.port: int = listener.extra(SocketAttribute.local_port)

    @classmethod
    async def bind(cls, host: str, port: int) -> AnyioListening:
        return cls(await anyio.create_tcp_listener(local_host=host, local_port=port))

    async def start(self, connections: TaskGroup, handler: Handler) -> None:
        connections.start_soon(self._accept_all, connections, handler)

    async def _accept_all(self, connections: TaskGroup, handler: Handler) -> None:
        with self._scope:
            async with anyio.create_task_group() as acceptors:
                for sub in self._listener.listeners:
                    # create_tcp_listener only ever makes socket listeners.
                    listener = cast(SocketListener, sub)
                    acceptors.start_soon(_accept, listener, connections, handler)

    async def aclose(self) -> None:
        self._scope.cancel()
        await self._listener.aclose()


async def _accept(listener: SocketListener, connections: TaskGroup, handler: Handler) -> None:
    while True:  # ends when `aclose` cancels the accept loops
        try:
            stream = await listener.accept()
        except anyio.ClosedResourceError:
            return  # `aclose` closed the socket before its cancellation arrived
        except OSError as exc:
            logger.error("Accepting a connection failed: %s", exc)
            await anyio.sleep(_ACCEPT_BACKOFF)
            continue
        connections.start_soon(handler, stream)


class AsyncioListening:
    """PERF: asyncio's own server, whose connections become `AsyncioByteStream`s."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._connections: TaskGroup | None = None
        self._handler: Handler | None = None
        self.port = 0

    @classmethod
    async def bind(cls, host: str, port: int) -> AsyncioListening:
        self = cls()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: StreamProtocol(self._connected),
            host,
            port,
            backlog=_BACKLOG,
            start_serving=False,
        )
        self._server = server
        self.port = server.sockets[0].getsockname()[1]
        return self

    def _connected(self, stream: AsyncioByteStream) -> None:
        if self._connections is None or self._handler is None:
            stream.abort()  # accepted while closing: refuse it
            return
        self._connections.start_soon(self._handler, stream)

    async def start(self, connections: TaskGroup, handler: Handler) -> None:
        assert self._server is not None
        self._connections, self._handler = connections, handler
        await self._server.start_serving()

    async def aclose(self) -> None:
        self._connections = None
        if self._server is not None:
            self._server.close()
