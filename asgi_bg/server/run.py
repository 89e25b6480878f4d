"""Blocking entry point: serve until SIGINT or SIGTERM, the way a process should."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import logging
import logging.config
import platform
import signal
from collections.abc import Callable
from dataclasses import fields
from functools import partial
from typing import Any, Unpack, cast

import anyio
from anyio.abc import TaskStatus

from .._types import ASGIApp
from .config import (
    Backend,
    Loop,
    ProcessConfig,
    ServerConfig,
    ServerOptions,
    SetupError,
    optional_module,
)
from .lifespan import LifespanFailure
from .server import serve
from .state import logger

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


async def serve_until_signalled(
    app: ASGIApp, ready: Callable[[], None] | None = None, **options: Unpack[ServerOptions]
) -> int:
    """Serve until a signal; the process exit status (0, or 1 when forced).

    `ready` is called once the server accepts connections (a worker tells its supervisor).
    """
    signals = _SignalWatch()
    failure: LifespanFailure | None = None
    async with anyio.create_task_group() as group:
        await group.start(signals.watch, group.cancel_scope)
        try:
            await serve(
                app, shutdown_trigger=signals.stop.wait, task_status=_Ready(ready), **options
            )
        except LifespanFailure as exc:
            failure = exc  # re-raised below, outside the group, so it is not wrapped
        group.cancel_scope.cancel()  # stop watching signals
    if failure is not None:
        raise failure
    return FORCED_EXIT if signals.forced else 0


class _Ready(TaskStatus[int]):
    def __init__(self, callback: Callable[[], None] | None) -> None:
        self._callback = callback

    def started(self, value: int | None = None) -> None:
        if self._callback is not None:
            self._callback()


class UvicornStyleFormatter(logging.Formatter):
    """`INFO:     message`, the line format uvicorn users read every day."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"{record.levelname}:".ljust(9)
        return f"{prefix} {super().format(record)}"


def setup_logging(level: str, config_file: str | None = None) -> None:
    """Log to stderr at `level` (uvicorn's format), or as a dictConfig file says."""
    if config_file is None:
        configure_logging(level)
    else:
        logging.config.dictConfig(_read_log_config(config_file))
    logging.getLogger("asgi_bg").setLevel(level.upper())


def _read_log_config(path: str) -> dict[str, Any]:
    with open(path) as file:
        if not path.endswith((".yaml", ".yml")):
            return cast(dict[str, Any], json.load(file))
        yaml = optional_module("yaml", "pyyaml", "a YAML --log-config")
        return cast(dict[str, Any], yaml.safe_load(file))


def configure_logging(level: str) -> None:
    """Log to stderr at `level` unless the program configured logging already."""
    handler = logging.StreamHandler()
    handler.setFormatter(UvicornStyleFormatter("%(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])


def version_line() -> str:
    """`--version`: the package, the interpreter and the system, as uvicorn prints them."""
    try:
        version = importlib.metadata.version("asgi_bg")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"Running asgi_bg {version} with {python} on {platform.system()}"


def backend_options(backend: Backend, loop: Loop) -> dict[str, Any] | None:
    """anyio's options for the event loop `loop` names (only asyncio has a choice).

    `auto` picks uvloop when it is installed. Without a loop factory asyncio follows
    the event loop policy, so a caller who ran `uvloop.install()` gets uvloop either way.
    """
    if backend != "asyncio":
        return None
    if loop == "asyncio":
        return {"loop_factory": asyncio.SelectorEventLoop}
    try:
        uvloop = optional_module("uvloop", "'asgi_bg[uvloop]'", "--loop uvloop")
    except SetupError:
        if loop == "uvloop":
            raise
        return None
    return {"loop_factory": uvloop.new_event_loop}


def run_process(
    app: ASGIApp,
    server: ServerConfig,
    process: ProcessConfig,
    ready: Callable[[], None] | None = None,
) -> int:
    """Serve `app` in this process until a signal; the exit status."""
    options = cast(ServerOptions, {f.name: getattr(server, f.name) for f in fields(server)})
    return anyio.run(
        partial(serve_until_signalled, app, ready, **options),
        backend=process.backend,
        backend_options=backend_options(process.backend, process.loop),
    )


def run(
    app: ASGIApp,
    *,
    backend: Backend = "asyncio",
    loop: Loop = "auto",
    log_level: str | None = "info",
    **options: Unpack[ServerOptions],
) -> None:
    """Serve an ASGI 3 app over HTTP/1.1, blocking until SIGINT or SIGTERM.

    Takes the options of `serve` (`host`, `port`, `shutdown_timeout`, ...). `loop`
    picks asyncio's event loop (`auto`: uvloop when installed); `backend="trio"` runs on
    trio. The first signal shuts down gracefully (see `serve`); a second one cancels
    what is left and raises `SystemExit(1)`. `log_level=None` leaves logging
    configuration alone. Raises `LifespanFailure` if the app's startup failed.
    """
    if log_level is not None:
        configure_logging(log_level)
    process = ProcessConfig(backend=backend, loop=loop)
    status = run_process(app, ServerConfig(**options), process)
    if status:
        raise SystemExit(status)
