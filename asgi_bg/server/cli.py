"""`python -m asgi_bg module:attr` and the `asgi-bg` console script."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, cast

import anyio

from .._types import ASGIApp
from .config import (
    DEFAULT_BODY_MIN_RATE,
    DEFAULT_BODY_RATE_GRACE,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_HEADER_SIZE,
    DEFAULT_SEND_TIMEOUT,
    DEFAULT_WS_MAX_SIZE,
)
from .lifespan import LifespanFailure
from .run import configure_logging, serve_until_signalled

# Exit status when the app cannot be imported or its startup failed (as uvicorn).
STARTUP_FAILURE = 3
# Exit status when the socket cannot be bound (as uvicorn).
BIND_FAILURE = 1

# After serving, how long idle worker threads get to stop before the process exits anyway.
_THREAD_GRACE = 1.0


def build_parser() -> argparse.ArgumentParser:
    """The command line, with the same defaults as `serve`."""
    parser = argparse.ArgumentParser(
        prog="asgi-bg", description="Serve an ASGI 3 application over HTTP/1.1."
    )
    add = parser.add_argument
    add("app", help="the application, as module:attribute (e.g. main:app)")
    add("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    add("--port", type=int, default=8000, help="port; 0 picks a free one (default: %(default)s)")
    add(
        "--shutdown-timeout",
        "--timeout-graceful-shutdown",  # uvicorn's name
        type=float,
        default=30.0,
        help="seconds in-flight work may take",
    )
    add(
        "--keep-alive",
        "--timeout-keep-alive",  # uvicorn's name
        type=float,
        default=5.0,
        help="idle keep-alive timeout, seconds",
    )
    add("--header-timeout", type=float, default=10.0, help="seconds to receive a request head")
    add("--body-timeout", type=float, default=30.0, help="seconds a request body may stall")
    add(
        "--body-min-rate",
        type=float,
        default=DEFAULT_BODY_MIN_RATE,
        help="bytes/s a request body must average after the grace; 0: off (default: %(default)s)",
    )
    add(
        "--body-rate-grace",
        type=float,
        default=DEFAULT_BODY_RATE_GRACE,
        help="seconds before body-min-rate applies (default: %(default)s)",
    )
    add(
        "--send-timeout",
        type=float,
        default=DEFAULT_SEND_TIMEOUT,
        help="seconds a write may wait for the client to read (default: %(default)s)",
    )
    add("--max-body", type=int, default=DEFAULT_MAX_BODY, help="largest request body, bytes")
    add("--max-header-size", type=int, default=DEFAULT_MAX_HEADER_SIZE, help="bytes")
    add("--root-path", default="", help="ASGI root_path, for apps mounted under a prefix")
    add("--limit-concurrency", type=int, default=None, help="ASGI calls before 503")
    add("--no-access-log", action="store_true", help="do not log one line per request")
    add("--ws-ping-interval", type=float, default=20.0, help="WebSocket ping period, seconds")
    add("--ws-ping-timeout", type=float, default=20.0, help="seconds to answer a ping")
    add("--ws-max-size", type=int, default=DEFAULT_WS_MAX_SIZE, help="largest message, bytes")
    add("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    add("--backend", default="asyncio", choices=["asyncio", "trio"], help="anyio backend")
    add("--app-dir", default=".", help="directory put first on sys.path (default: %(default)s)")
    add("--factory", action="store_true", help="the attribute is a factory returning the app")
    return parser


def load_app(target: str, *, factory: bool = False) -> ASGIApp:
    """Import `module:attribute` (the attribute may be dotted)."""
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise ValueError(f"app must be given as module:attribute, not {target!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"{module_name!r} has no attribute {attr_path!r}") from None
    if factory:
        obj = obj()
    if not callable(obj):
        raise ValueError(f"{target!r} is not callable, so it is not an ASGI app")
    return cast(ASGIApp, obj)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    logging.getLogger("asgi_bg").setLevel(args.log_level.upper())
    sys.path.insert(0, args.app_dir)
    try:
        app = load_app(args.app, factory=args.factory)
    except (ImportError, ValueError) as exc:
        logging.getLogger("asgi_bg.server").error("Cannot load the app: %s", exc)
        return STARTUP_FAILURE
    try:
        status = _serve_or_report_bind_failure(app, args)
    except LifespanFailure:
        return STARTUP_FAILURE  # already logged with the app's message
    _exit_without_abandoned_threads(status)
    return status


def _serve_or_report_bind_failure(app: ASGIApp, args: argparse.Namespace) -> int:
    failures: list[BaseException] = []
    try:
        return anyio.run(_serve, app, args, backend=args.backend)
    except* OSError as group:
        failures.extend(group.exceptions)
    # As uvicorn: one line naming the address, not a traceback, and status 1.
    for exc in failures:
        reason = os.strerror(exc.errno).lower() if isinstance(exc, OSError) and exc.errno else exc
        logging.getLogger("asgi_bg.server").error(
            "[Errno %s] error while attempting to bind on address (%r, %d): %s",
            getattr(exc, "errno", None),
            args.host,
            args.port,
            reason,
        )
    return BIND_FAILURE


def _exit_without_abandoned_threads(status: int) -> None:
    """Exit now if a thread shutdown gave up on is still running.

    A thread cannot be cancelled: a `def` task (or handler) that outlived the shutdown
    timeout was cancelled, counted and named, but its thread goes on. asyncio's worker
    threads are not daemons, so the interpreter would wait for it at exit, past
    `--shutdown-timeout`, possibly for ever. The app's shutdown has run by now.
    """
    deadline = time.monotonic() + _THREAD_GRACE
    busy = []
    for thread in threading.enumerate():
        if thread is threading.current_thread() or thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            busy.append(thread.name)
    if not busy:
        return
    logging.getLogger("asgi_bg.server").warning(
        "Exiting with %d thread(s) still running work that shutdown cancelled: %s",
        len(busy),
        ", ".join(busy),
    )
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


async def _serve(app: ASGIApp, args: argparse.Namespace) -> int:
    return await serve_until_signalled(
        app,
        host=args.host,
        port=args.port,
        shutdown_timeout=args.shutdown_timeout,
        keep_alive=args.keep_alive,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        body_min_rate=args.body_min_rate,
        body_rate_grace=args.body_rate_grace,
        send_timeout=args.send_timeout,
        max_body=args.max_body,
        max_header_size=args.max_header_size,
        root_path=args.root_path,
        limit_concurrency=args.limit_concurrency,
        access_log=not args.no_access_log,
        ws_ping_interval=args.ws_ping_interval,
        ws_ping_timeout=args.ws_ping_timeout,
        ws_max_size=args.ws_max_size,
    )
