"""Where connections come from: anyio's listeners, or asyncio's server on asyncio.

Both bind at once (so a busy port fails before lifespan startup), start accepting only
when asked, and hand every connection as an `anyio.abc.ByteStream` to a handler run
in the caller's task group. The socket is `host:port`, a Unix socket (`uds`) or an
inherited one (`fd`); with TLS configured, connections are TLS streams.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import stat
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import anyio
from anyio.abc import ByteStream, SocketListener, TaskGroup
from anyio.streams.tls import TLSStream

from ._asyncio_stream import AsyncioByteStream, StreamProtocol
from .config import ServerConfig
from .state import logger

Handler = Callable[[ByteStream], Coroutine[Any, Any, None]]

# After an accept error such as EMFILE (too many open files), wait this long before
# accepting again instead of spinning (asyncio's own server waits 1 s).
_ACCEPT_BACKOFF = 0.1
# A TLS handshake that takes longer than this is given up.
_TLS_HANDSHAKE_TIMEOUT = 10.0


class Listening(Protocol):
    """A bound socket that accepts once `start` is called, until `aclose`."""

    description: str  # for the "serving on" line: http://host:port or unix:path
    port: int  # 0 on a Unix socket

    async def start(self, connections: TaskGroup, handler: Handler) -> None: ...

    async def aclose(self) -> None: ...


class AcceptErrorLog:
    """Logs accept errors at most once a second, with how many there were.

    Running out of file descriptors makes every accept fail at once: a line per
    failure would flood the log (and the disk) while the server is already struggling.
    """

    def __init__(self, interval: float = 1.0) -> None:
        self._interval = interval
        self._count = 0
        self._last = -interval

    def report(self, exc: BaseException) -> None:
        self._count += 1
        now = time.monotonic()
        if now - self._last < self._interval:
            return
        logger.error(
            "Accepting connections failed (%d time(s) since last report): %s", self._count, exc
        )
        self._count, self._last = 0, now


def bind_socket(config: ServerConfig) -> socket.socket:
    """One listening socket for the options: inherited (`fd`), Unix (`uds`) or TCP."""
    if config.fd is not None:
        sock = socket.socket(fileno=config.fd)
    elif config.uds is not None:
        sock = _bind_unix(config.uds)
    else:
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((config.host, config.port))
        except OSError:
            sock.close()
            raise
    sock.listen(config.backlog)
    sock.setblocking(False)
    return sock


def _bind_unix(path: str) -> socket.socket:
    # A socket file left by a previous run would make bind fail: replace it (only a socket).
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    os.chmod(path, 0o666)  # as uvicorn: the proxy in front usually runs as another user
    return sock


def describe_socket(sock: Any, tls: bool = False) -> str:
    """`http://host:port`, `https://...` or `unix:path`, for the log (a socket or
    asyncio's wrapper of one)."""
    if sock.family == socket.AF_UNIX:
        return f"unix:{sock.getsockname()}"
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{host}:{port}"


def _port(sock: Any) -> int:
    name = sock.getsockname()
    return int(name[1]) if isinstance(name, tuple) else 0


async def open_listening(config: ServerConfig, tls: ssl.SSLContext | None) -> Listening:
    """Bind what `config` names with the fastest listener for this backend."""
    sock = None if config.fd is None and config.uds is None else bind_socket(config)
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # not asyncio: trio
        return await AnyioListening.bind(config, sock, tls)
    return await AsyncioListening.bind(config, sock, tls)


class AnyioListening:
    """anyio's listeners; one accept loop per bound socket."""

    def __init__(self, listeners: list[SocketListener], tls: ssl.SSLContext | None) -> None:
        self._listeners = listeners
        self._tls = tls
        self._scope = anyio.CancelScope()
        self._errors = AcceptErrorLog()
        self.description = ""
        self.port = 0

    @classmethod
    async def bind(
        cls, config: ServerConfig, sock: socket.socket | None, tls: ssl.SSLContext | None
    ) -> AnyioListening:
        if sock is not None:
            listeners = [await SocketListener.from_socket(sock)]
        else:
            multi = await anyio.create_tcp_listener(
                local_host=config.host, local_port=config.port, backlog=config.backlog
            )
            # create_tcp_listener only ever makes socket listeners.
            listeners = [sub for sub in multi.listeners if isinstance(sub, SocketListener)]
        self = cls(listeners, tls)
        raw = listeners[0].extra(anyio.abc.SocketAttribute.raw_socket)
        self.description = describe_socket(raw, tls is not None)
        self.port = _port(raw)
        return self

    async def start(self, connections: TaskGroup, handler: Handler) -> None:
        if self._tls is not None:
            handler = _over_tls(handler, self._tls)
        connections.start_soon(self._accept_all, connections, handler)

    async def _accept_all(self, connections: TaskGroup, handler: Handler) -> None:
        with self._scope:
            async with anyio.create_task_group() as acceptors:
                for listener in self._listeners:
                    acceptors.start_soon(self._accept, listener, connections, handler)

    async def _accept(
        self, listener: SocketListener, connections: TaskGroup, handler: Handler
    ) -> None:
        while True:  # ends when `aclose` cancels the accept loops
            try:
                stream = await listener.accept()
            except anyio.ClosedResourceError:
                return  # `aclose` closed the socket before its cancellation arrived
            except (OSError, anyio.BrokenResourceError) as exc:
                # On trio anyio reports EMFILE and the like as BrokenResourceError.
                self._errors.report(exc.__cause__ or exc)
                await anyio.sleep(_ACCEPT_BACKOFF)
                continue
            connections.start_soon(handler, stream)

    async def aclose(self) -> None:
        self._scope.cancel()
        for listener in self._listeners:
            await listener.aclose()


def _over_tls(handler: Handler, context: ssl.SSLContext) -> Handler:
    async def handshake_then_handle(stream: ByteStream) -> None:
        try:
            with anyio.fail_after(_TLS_HANDSHAKE_TIMEOUT):
                tls_stream = await TLSStream.wrap(
                    stream, server_side=True, ssl_context=context, standard_compatible=False
                )
        except (OSError, TimeoutError, anyio.BrokenResourceError, ssl.SSLError) as exc:
            logger.debug("TLS handshake failed: %r", exc)
            await anyio.aclose_forcefully(stream)
            return
        await handler(tls_stream)

    return handshake_then_handle


class AsyncioListening:
    """PERF: asyncio's own server, whose connections become `AsyncioByteStream`s."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._connections: TaskGroup | None = None
        self._handler: Handler | None = None
        self._errors = AcceptErrorLog()
        self.description = ""
        self.port = 0

    @classmethod
    async def bind(
        cls, config: ServerConfig, sock: socket.socket | None, tls: ssl.SSLContext | None
    ) -> AsyncioListening:
        self = cls()
        loop = asyncio.get_running_loop()
        factory = lambda: StreamProtocol(self._connected)  # noqa: E731
        if sock is not None:
            server = await loop.create_server(
                factory, sock=sock, backlog=config.backlog, ssl=tls, start_serving=False
            )
        else:
            server = await loop.create_server(
                factory,
                config.host,
                config.port,
                backlog=config.backlog,
                ssl=tls,
                start_serving=False,
            )
        self._server = server
        self.description = describe_socket(server.sockets[0], tls is not None)
        self.port = _port(server.sockets[0])
        return self

    def _connected(self, stream: AsyncioByteStream) -> None:
        if self._connections is None or self._handler is None:
            stream.abort()  # accepted while closing: refuse it
            return
        self._connections.start_soon(self._handler, stream)

    async def start(self, connections: TaskGroup, handler: Handler) -> None:
        assert self._server is not None
        self._connections, self._handler = connections, handler
        self._route_accept_errors(asyncio.get_running_loop())
        await self._server.start_serving()

    def _route_accept_errors(self, loop: asyncio.AbstractEventLoop) -> None:
        # asyncio's selector loop reports each failed accept (EMFILE...) to the loop's
        # exception handler with a traceback, for every try of its accept batch (the
        # backlog: 2048 a second), and schedules a retry in a second for each of them;
        # once the server is closed every pending retry fails with another traceback.
        # That was 55,000 tracebacks in 12 s: here they become one line a second.
        previous = loop.get_exception_handler()

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            message = str(context.get("message", ""))
            if "accept" in message:
                self._errors.report(context.get("exception") or OSError(message))
            elif "_start_serving" in message and self._connections is None:
                pass  # a retry scheduled by a failed accept, after the server closed
            elif previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(handler)

    async def aclose(self) -> None:
        self._connections = None
        if self._server is not None:
            self._server.close()
