"""Blocking entry point: serve until SIGINT or SIGTERM, the way a process should."""

from __future__ import annotations

import logging
import signal
from typing import Literal, Unpack

import anyio
from anyio.abc import TaskStatus

from .._types import ASGIApp
from .config import ServerOptions
from .lifespan import LifespanFailure
from .server import serve
from .state import logger

Backend = Literal["asyncio", "trio"]

# Exit status when a second signal cut the graceful shutdown short.
FORCED_EXIT = 1


class _SignalWatch:
    """First SIGINT/SIGTERM: graceful shutdown. Second one: cancel everything now."""

    def __init__(self) -> None:
        self.stop = anyio.Event()
        self.forced = False

    async def watch(self, scope: anyio.CancelScope, *, task_status: TaskStatus[None]) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
            task_status.started()  # handlers are in place before the server starts
            async for signum in received:
                name = signal.Signals(signum).name
                if not self.stop.is_set():
                    logger.info("%s received: shutting down gracefully (again to force)", name)
                    self.stop.set()
                    continue
                logger.warning("%s received again: forcing exit", name)
                self.forced = True
                scope.cancel()
                return


async def serve_until_signalled(app: ASGIApp, **options: Unpack[ServerOptions]) -> int:
    """Serve until a signal; the process exit status (0, or 1 when forced)."""
    signals = _SignalWatch()
    failure: LifespanFailure | None = None
    async with anyio.create_task_group() as group:
        await group.start(signals.watch, group.cancel_scope)
        try:
            await serve(app, shutdown_trigger=signals.stop.wait, **options)
        except LifespanFailure as exc:
            failure = exc  # re-raised below, outside the group, so it is not wrapped
        group.cancel_scope.cancel()  # stop watching signals
    if failure is not None:
        raise failure
    return FORCED_EXIT if signals.forced else 0


class UvicornStyleFormatter(logging.Formatter):
    """`INFO:     message`, the line format uvicorn users read every day."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"{record.levelname}:".ljust(9)
        return f"{prefix} {super().format(record)}"


def configure_logging(level: str) -> None:
    """Log to stderr at `level` unless the program configured logging already."""
    handler = logging.StreamHandler()
    handler.setFormatter(UvicornStyleFormatter("%(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])


def run(
    app: ASGIApp,
    *,
    backend: Backend = "asyncio",
    log_level: str | None = "info",
    **options: Unpack[ServerOptions],
) -> None:
    """Serve an ASGI 3 app over HTTP/1.1, blocking until SIGINT or SIGTERM.

    Takes the options of `serve` (`host`, `port`, `shutdown_timeout`, ...). The first
    signal shuts down gracefully (see `serve`); a second one cancels what is left and
    raises `SystemExit(1)`. `log_level=None` leaves logging configuration alone.
    Raises `LifespanFailure` if the app's startup failed.
    """
    if log_level is not None:
        configure_logging(log_level)
    status = anyio.run(_serve_with_options, app, options, backend=backend)
    if status:
        raise SystemExit(status)


async def _serve_with_options(app: ASGIApp, options: ServerOptions) -> int:
    return await serve_until_signalled(app, **options)
