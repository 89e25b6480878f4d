"""`python -m asgi_bg module:attr` and the `asgi-bg` console script."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import Field, fields, replace
from functools import partial
from typing import Any

from .._types import ASGIApp
from .config import SAME, ProcessConfig, ServerConfig, SetupError, option_info
from .lifespan import LifespanFailure
from .loading import AppNotFound, load_app, load_env_file
from .run import run_process, setup_logging, version_line
from .supervisor import WorkerHandoff, supervise
from .tls import make_ssl_context

# Exit status when the app's lifespan startup failed (as uvicorn).
STARTUP_FAILURE = 3
# Exit status when the app cannot be imported, or the socket cannot be bound (as uvicorn).
LOAD_FAILURE = BIND_FAILURE = 1

# After serving, how long idle worker threads get to stop before the process exits anyway.
_THREAD_GRACE = 1.0

logger = logging.getLogger("asgi_bg.server")


def build_parser() -> argparse.ArgumentParser:
    """The command line, generated from the fields of `ServerConfig` and `ProcessConfig`."""
    parser = argparse.ArgumentParser(
        prog="asgi-bg",
        description="Serve an ASGI 3 application over HTTP/1.1.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("app", help="the application, as module:attribute (e.g. main:app)")
    parser.add_argument("--version", action="version", version=version_line())
    for config, title in ((ServerConfig, "server"), (ProcessConfig, "process")):
        group = parser.add_argument_group(title)
        hints = typing.get_type_hints(config)
        for field in fields(config):
            _add_option(group, field, hints[field.name])
    return parser


def _add_option(group: argparse._ArgumentGroup, field: Field[Any], hint: Any) -> None:
    info = option_info(field)
    flags = info.flags or ("--" + field.name.replace("_", "-"),)
    note = ""
    if info.uvicorn is None:
        note = " [not a uvicorn option]"
    elif info.uvicorn != SAME:
        note = f" [differs from uvicorn: {info.uvicorn}]"
    kwargs: dict[str, Any] = {"dest": field.name, "help": info.help.replace("%", "%%") + note}
    if hint is bool:
        kwargs.update(action=argparse.BooleanOptionalAction, default=field.default)
    elif typing.get_origin(hint) is tuple:
        kwargs.update(action="append", default=None, metavar=info.metavar)
    else:
        kwargs.update(
            type=_scalar(hint), default=field.default, choices=info.choices, metavar=info.metavar
        )
    group.add_argument(*flags, **kwargs)


def _scalar(hint: Any) -> type:
    """`int | None` -> int; `Literal[...]` -> str."""
    if isinstance(hint, types.UnionType):
        (hint,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    if typing.get_origin(hint) is typing.Literal:
        return str
    assert isinstance(hint, type)
    return hint


def _configs(args: argparse.Namespace) -> tuple[ServerConfig, ProcessConfig]:
    values = vars(args)

    def pick(config: type) -> dict[str, Any]:
        # A repeatable option is None (never given) or a list: the config holds a tuple.
        return {
            f.name: tuple(values[f.name] or ()) if isinstance(f.default, tuple) else values[f.name]
            for f in fields(config)
        }

    return ServerConfig(**pick(ServerConfig)), ProcessConfig(**pick(ProcessConfig))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        server, process = _configs(args)
        if process.env_file is not None:
            load_env_file(process.env_file)
        setup_logging(process.log_level, process.log_config)
        make_ssl_context(server)  # a missing or wrong certificate is a usage error
    except (ValueError, OSError, SetupError) as exc:
        parser.error(str(exc))
    sys.path.insert(0, process.app_dir)
    try:
        return _run(args.app, server, process, argv)
    except SetupError as exc:
        logger.error("%s", exc)
        return LOAD_FAILURE


def _run(target: str, server: ServerConfig, process: ProcessConfig, argv: list[str]) -> int:
    handoff = WorkerHandoff.from_environment()
    if handoff is None and (process.workers > 1 or process.reload):
        return _report_bind_failure(partial(supervise, argv, server, process), server)
    if handoff is not None:
        server = replace(server, fd=handoff.fd, uds=None)
    app = _load_or_report(target, process.factory)
    if app is None:
        return LOAD_FAILURE
    ready = handoff.ready if handoff else None
    try:
        status = _report_bind_failure(partial(run_process, app, server, process, ready), server)
    except LifespanFailure:
        return STARTUP_FAILURE  # already logged with the app's message
    _exit_without_abandoned_threads(status)
    return status


def _load_or_report(target: str, factory: bool) -> ASGIApp | None:
    try:
        return load_app(target, factory=factory)
    except AppNotFound as exc:
        logger.error("Error loading ASGI app. %s", exc)
    except Exception:
        # The app's own module raised: its traceback (the user's file and line) matters.
        logger.exception("Error loading ASGI app %r: importing it raised", target)
    return None


def _report_bind_failure(serve: Callable[[], int], server: ServerConfig) -> int:
    failures: list[BaseException] = []
    try:
        return serve()
    except* OSError as group:
        failures.extend(group.exceptions)
    address = server.uds if server.uds is not None else (server.host, server.port)
    # As uvicorn: one line naming the address, not a traceback, and status 1.
    for exc in failures:
        reason = os.strerror(exc.errno).lower() if isinstance(exc, OSError) and exc.errno else exc
        logger.error(
            "[Errno %s] error while attempting to bind on address %r: %s",
            getattr(exc, "errno", None),
            address,
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
    logger.warning(
        "Exiting with %d thread(s) still running work that shutdown cancelled: %s",
        len(busy),
        ", ".join(busy),
    )
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
