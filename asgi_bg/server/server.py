"""The listener: lifespan, accepting connections, and graceful shutdown."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Unpack

import anyio
from anyio.abc import ByteStream, TaskGroup, TaskStatus

from .._types import ASGIApp
from .config import ServerConfig, ServerOptions
from .connection import HTTPConnection
from .idle import expire_idle_connections
from .lifespan import Lifespan, LifespanFailure
from .listeners import Listening, open_listening
from .state import ServerState, logger
from .tls import make_ssl_context
from .wrappers import wrap_app

ShutdownTrigger = Callable[[], Awaitable[object]]


class Server:
    """One listening server: owns every connection and every ASGI call in task groups."""

    def __init__(self, app: ASGIApp, config: ServerConfig) -> None:
        self.config = config
        self._max_requests = anyio.Event()
        self.state = ServerState(wrap_app(app, config, self._max_requests.set), config)
        self._drained = anyio.Event()
        self._open = 0  # connections being handled, for `limit_connections`

    async def serve(self, shutdown_trigger: ShutdownTrigger, task_status: TaskStatus[int]) -> None:
        """Start up, serve until `shutdown_trigger` returns, then shut down gracefully."""
        # Bound before lifespan startup so a busy port fails fast, with a plain OSError;
        # nothing is accepted until startup has succeeded.
        listening = await open_listening(self.config, make_ssl_context(self.config))
        try:
            failure = await self._run(listening, shutdown_trigger, task_status)
        finally:
            await listening.aclose()
        if failure is not None:  # raised here, outside task groups: not wrapped in a group
            raise LifespanFailure(failure)

    async def _run(
        self, listening: Listening, shutdown_trigger: ShutdownTrigger, task_status: TaskStatus[int]
    ) -> str | None:
        logger.info("Started server process [%d]", os.getpid())
        async with anyio.create_task_group() as lifespan_group:
            lifespan = Lifespan(self.state.app)
            self.state.lifespan_state = lifespan.state
            logger.info("Waiting for application startup.")
            failure = await lifespan.startup(lifespan_group)
            if failure is not None:
                lifespan_group.cancel_scope.cancel()
                return failure
            logger.info("Application startup complete.")
            await self._serve_http(listening, shutdown_trigger, task_status)
            logger.info("Waiting for application shutdown.")
            await lifespan.shutdown(self.config.shutdown_timeout)
            logger.info("Application shutdown complete.")
        logger.info("Finished server process [%d]", os.getpid())
        return None

    async def _serve_http(
        self, listening: Listening, shutdown_trigger: ShutdownTrigger, task_status: TaskStatus[int]
    ) -> None:
        async with anyio.create_task_group() as connections:
            connections.start_soon(expire_idle_connections, self.state)
            await listening.start(connections, self._handle)
            logger.info("asgi_bg serving on %s (Press CTRL+C to quit)", listening.description)
            task_status.started(listening.port)
            await self._wait_for_shutdown(shutdown_trigger)
            await listening.aclose()  # new clients are refused from here on
            await self._drain(connections)
            connections.cancel_scope.cancel()  # the idle sweep; connections are done

    async def _wait_for_shutdown(self, shutdown_trigger: ShutdownTrigger) -> None:
        async with anyio.create_task_group() as waiting:

            async def stop_when(trigger: ShutdownTrigger) -> None:
                await trigger()
                waiting.cancel_scope.cancel()

            waiting.start_soon(stop_when, shutdown_trigger)
            waiting.start_soon(stop_when, self._after_max_requests)

    async def _after_max_requests(self) -> None:
        await self._max_requests.wait()
        logger.info(
            "Maximum request limit of %s reached: shutting down", self.config.limit_max_requests
        )

    async def _handle(self, stream: ByteStream) -> None:
        limit = self.config.limit_connections
        if limit is not None and self._open >= limit:
            # Refused at once: past the limit a server that is out of resources stays up.
            await anyio.aclose_forcefully(stream)
            return
        self._open += 1
        try:
            await HTTPConnection(stream, self.state).run()
        except Exception:
            logger.exception("Unexpected error on a connection; it was closed")
        finally:
            self._open -= 1
            if self.state.shutting_down and not self.state.connections:
                self._drained.set()

    async def _drain(self, connections: TaskGroup) -> None:
        """Close idle connections, let busy ones finish, cancel what outlives the timeout."""
        self.state.shutting_down = True
        for connection in list(self.state.connections):
            connection.shutdown()
        logger.info("Shutting down: waiting for %d connection(s)", len(self.state.connections))
        if not self.state.connections:
            return
        with anyio.move_on_after(self.config.shutdown_timeout):
            await self._drained.wait()
        if self.state.connections:
            for cycle in list(self.state.requests):
                stage = "response sent, still running" if cycle.complete else "response not sent"
                logger.warning("Cancelling unfinished request %s (%s)", cycle.describe(), stage)
            connections.cancel_scope.cancel()


async def serve(
    app: ASGIApp,
    *,
    shutdown_trigger: ShutdownTrigger | None = None,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
    **options: Unpack[ServerOptions],
) -> None:
    """Serve an ASGI 3 app over HTTP/1.1 until `shutdown_trigger()` returns.

    `options` are the fields of `ServerConfig` (`host`, `port`, `uds`, `fd`,
    `shutdown_timeout`, `keep_alive`, `proxy_headers`, `ssl_certfile`, ...; see
    docs/server.md). Start it with
    `port = await task_group.start(serve, app, ...)`: readiness (after lifespan
    startup, with the socket listening) is reported as the bound port, useful with
    `port=0`. When `shutdown_trigger()` returns the server drains gracefully: it stops
    accepting, closes idle connections, lets in-flight requests and their ASGI calls
    finish for up to `shutdown_timeout` seconds, cancels the rest (logging each) and
    runs lifespan shutdown. Cancelling the caller stops everything at once instead.
    Raises `LifespanFailure` if the app reports that its startup failed.
    """
    config = ServerConfig(**options)
    await Server(app, config).serve(shutdown_trigger or anyio.sleep_forever, task_status)
