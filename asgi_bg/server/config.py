"""Server settings, declared once: each field drives `serve`, `run` and the command line.

A field's metadata (see `option`) carries its help text, its command-line flags and how
it compares with uvicorn's flag of the same job; `cli.py` builds the parser from the
fields of `ServerConfig` (what `serve` takes) and `ProcessConfig` (what only a whole
process can do: the event loop, logging, workers, reload).
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

# A request body larger than this is refused with 413 unless `max_body` says otherwise:
# big enough for ordinary JSON and form posts, small enough that one client cannot
# make the server buffer much on its behalf.
DEFAULT_MAX_BODY = 4 * 1024 * 1024

# A request body must average at least this many bytes per second of waiting, after a
# grace period: ASP.NET Core Kestrel's defaults (240 bytes/s after 5 s). Legitimate
# uploads, even over a poor mobile link, are far faster; a client dripping a body to
# hold a `limit_concurrency` slot is cut off after a few seconds.
DEFAULT_BODY_MIN_RATE = 240.0
DEFAULT_BODY_RATE_GRACE = 5.0

# One write may wait this long for the client to read (nginx's `send_timeout` is 60 s).
DEFAULT_SEND_TIMEOUT = 30.0

# h11's own default for the request line plus headers; past it the answer is 431.
DEFAULT_MAX_HEADER_SIZE = 16 * 1024

# A WebSocket message larger than this closes the connection with 1009 (as uvicorn).
DEFAULT_WS_MAX_SIZE = 16 * 1024 * 1024

# `uvicorn=` value of an option uvicorn has under the same flag, with the same meaning.
SAME = "same"


class SetupError(Exception):
    """The options ask for something this installation cannot do (e.g. a missing extra)."""


def optional_module(name: str, package: str, purpose: str) -> Any:
    """Import an optional dependency, or say what to install (`package`) to get it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise SetupError(f"{purpose} needs {name}: pip install {package}") from None


@dataclass(frozen=True)
class OptionInfo:
    """How one setting appears on the command line."""

    help: str
    flags: tuple[str, ...]  # empty: `--` + the field name with dashes
    uvicorn: str | None  # SAME, None (uvicorn has no such flag) or how it differs
    choices: tuple[str, ...] | None
    metavar: str | None


def option(
    default: Any,
    help: str,
    *,
    flags: tuple[str, ...] = (),
    uvicorn: str | None = SAME,
    choices: tuple[str, ...] | None = None,
    metavar: str | None = None,
) -> Any:
    """A dataclass field that is also a command-line option."""
    info = OptionInfo(help, flags, uvicorn, choices, metavar)
    return dataclasses.field(default=default, metadata={"option": info})


def option_info(field: dataclasses.Field[Any]) -> OptionInfo:
    info = field.metadata["option"]
    assert isinstance(info, OptionInfo)
    return info


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything the server needs besides the application (the keywords of `serve`).

    Times are in seconds. `port=0` asks the operating system for any free port.
    `header_timeout` bounds the reading of a request head; `body_timeout` bounds each
    wait for more of a request body (a client that stalls midway gets 408).
    `body_min_rate` (bytes per second; 0 turns it off) bounds a whole body: past
    `body_rate_grace` seconds, the time spent waiting for the client may not exceed
    what that rate allows for the bytes it sent (a body dripped slowly gets 408).
    `send_timeout` bounds each write: a client that reads nothing of a response for
    that long is disconnected.
    `limit_concurrency` caps the ASGI calls in flight (including calls whose response
    is already sent but whose background work still runs); requests beyond it get 503.
    WebSockets: a ping every `ws_ping_interval` seconds (None: never) must be answered
    within `ws_ping_timeout`; a message over `ws_max_size` bytes closes with 1009.
    """

    host: str = option("127.0.0.1", "interface to bind")
    port: int = option(8000, "port; 0 picks a free one (the log line shows which)")
    uds: str | None = option(None, "bind this Unix domain socket instead of host:port")
    fd: int | None = option(
        None, "serve an inherited listening socket, e.g. from systemd socket activation"
    )
    backlog: int = option(2048, "connections the kernel queues before they are accepted")
    shutdown_timeout: float = option(
        30.0,
        "seconds in-flight requests and their background tasks get at shutdown",
        flags=("--timeout-graceful-shutdown", "--shutdown-timeout"),
        uvicorn="uvicorn's default is to wait for ever; here 30 s, then the rest is cancelled",
    )
    keep_alive: float = option(
        5.0,
        "seconds an idle keep-alive connection stays open",
        flags=("--timeout-keep-alive", "--keep-alive"),
    )
    header_timeout: float = option(
        10.0, "seconds to receive a request line and headers", uvicorn=None
    )
    body_timeout: float = option(30.0, "seconds a request body may stall before 408", uvicorn=None)
    body_min_rate: float = option(
        DEFAULT_BODY_MIN_RATE,
        "bytes/s a request body must average after --body-rate-grace; 0: off",
        uvicorn=None,
    )
    body_rate_grace: float = option(
        DEFAULT_BODY_RATE_GRACE, "seconds before --body-min-rate applies", uvicorn=None
    )
    send_timeout: float = option(
        DEFAULT_SEND_TIMEOUT, "seconds a write may wait for the client to read", uvicorn=None
    )
    max_body: int = option(DEFAULT_MAX_BODY, "largest request body in bytes (413)", uvicorn=None)
    max_header_size: int = option(
        DEFAULT_MAX_HEADER_SIZE,
        "largest request head in bytes (431)",
        uvicorn="uvicorn calls it --h11-max-incomplete-event-size",
    )
    root_path: str = option("", "ASGI root_path, for an app mounted under a URL prefix")
    limit_concurrency: int | None = option(
        None,
        "ASGI calls in flight before 503",
        uvicorn="uvicorn counts connections and tasks; here ASGI calls, background work included",
    )
    limit_connections: int | None = option(
        None, "open connections beyond which new ones are closed at once", uvicorn=None
    )
    limit_max_requests: int | None = option(
        None, "stop (a worker: get replaced) after this many requests"
    )
    access_log: bool = option(True, "log one line per request")
    proxy_headers: bool = option(
        False,
        "trust X-Forwarded-For/-Proto from --forwarded-allow-ips",
        uvicorn="uvicorn turns it on by default; here only when asked",
    )
    forwarded_allow_ips: str = option(
        "127.0.0.1",
        "comma-separated peer addresses or networks whose proxy headers count; * for all",
        uvicorn="uvicorn also reads $FORWARDED_ALLOW_IPS; here only the option",
    )
    ssl_keyfile: str | None = option(None, "TLS private key file (PEM)")
    ssl_certfile: str | None = option(None, "TLS certificate chain file (PEM)")
    ssl_keyfile_password: str | None = option(None, "password of the TLS private key")
    ssl_ca_certs: str | None = option(None, "CA certificates file to verify client certificates")
    ssl_cert_reqs: int = option(
        0, "client certificates: 0 not asked, 1 optional, 2 required", metavar="0|1|2"
    )
    ws_ping_interval: float | None = option(20.0, "seconds between WebSocket pings")
    ws_ping_timeout: float | None = option(20.0, "seconds a WebSocket ping may go unanswered")
    ws_max_size: int = option(DEFAULT_WS_MAX_SIZE, "largest WebSocket message in bytes (1009)")
    headers: tuple[str, ...] = option(
        (),
        "extra response header NAME:VALUE (repeatable)",
        flags=("--header",),
        metavar="NAME:VALUE",
    )

    def __post_init__(self) -> None:
        _check_config(self)


_NOT_NEGATIVE = (
    "shutdown_timeout",
    "keep_alive",
    "header_timeout",
    "body_timeout",
    "body_min_rate",
    "body_rate_grace",
    "send_timeout",
)


def _check_config(config: ServerConfig) -> None:
    if not 0 <= config.port <= 65535:
        raise ValueError(f"port must be between 0 and 65535, not {config.port}")
    for name in _NOT_NEGATIVE:
        if getattr(config, name) < 0:
            raise ValueError(f"{name} must not be negative")
    if config.max_body < 0 or config.max_header_size < 1:
        raise ValueError("max_body must be >= 0 and max_header_size >= 1")
    limits = ("limit_concurrency", "limit_connections", "limit_max_requests", "backlog")
    for name in (*limits, "ws_max_size"):
        value = getattr(config, name)
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1")
    _check_sockets_and_text(config)


def _check_sockets_and_text(config: ServerConfig) -> None:
    if config.root_path.endswith("/"):
        raise ValueError("root_path must not end with '/'")
    if config.uds is not None and config.fd is not None:
        raise ValueError("give uds or fd, not both")
    if (config.ssl_keyfile is None) != (config.ssl_certfile is None):
        raise ValueError("TLS needs both ssl_keyfile and ssl_certfile")
    if config.ssl_cert_reqs not in (0, 1, 2):
        raise ValueError("ssl_cert_reqs must be 0, 1 or 2")
    for header in config.headers:
        name, sep, _ = header.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"a header is NAME:VALUE, not {header!r}")


Backend = Literal["asyncio", "trio"]
Loop = Literal["auto", "asyncio", "uvloop"]
LogLevel = Literal["critical", "error", "warning", "info", "debug"]


@dataclass(frozen=True, slots=True)
class ProcessConfig:
    """What only a whole process sets up: the event loop, logging, workers, reload.

    `run` takes `backend`, `loop` and `log_level`; the rest is for the command line.
    """

    # RUF009 cannot tell a Literal alias is immutable; these defaults are strings.
    backend: Backend = option(  # noqa: RUF009
        "asyncio", "anyio backend", uvicorn=None, choices=("asyncio", "trio")
    )
    loop: Loop = option(  # noqa: RUF009
        "auto",
        "event loop on asyncio; auto: uvloop when installed",
        choices=("auto", "asyncio", "uvloop"),
        uvicorn="uvicorn's auto also looks for winloop",
    )
    log_level: LogLevel = option(  # noqa: RUF009
        "info",
        "log level",
        choices=("critical", "error", "warning", "info", "debug"),
        uvicorn="uvicorn also has trace",
    )
    log_config: str | None = option(
        None,
        "logging dictConfig file, .json or .yaml/.yml",
        uvicorn="uvicorn also reads .ini files",
    )
    env_file: str | None = option(
        None,
        "KEY=VALUE lines added to the environment before the app is imported",
        uvicorn="uvicorn uses python-dotenv; here plain KEY=VALUE lines",
    )
    app_dir: str = option(".", "directory put first on sys.path")
    factory: bool = option(False, "the attribute is a function returning the app")
    workers: int = option(
        1,
        "worker processes sharing the listening socket",
        uvicorn="uvicorn's default comes from $WEB_CONCURRENCY",
    )
    reload: bool = option(
        False,
        "restart the worker when a watched file changes (one worker)",
        uvicorn="uvicorn polls without watchfiles; here watchfiles is required",
    )
    reload_dirs: tuple[str, ...] = option(
        (), "directory to watch (repeatable); default: the app dir", flags=("--reload-dir",)
    )
    reload_includes: tuple[str, ...] = option(
        (), "glob of files to watch (repeatable); default: *.py", flags=("--reload-include",)
    )
    reload_excludes: tuple[str, ...] = option(
        (),
        "glob of files to ignore (repeatable); default: .* and *.py[cod]",
        flags=("--reload-exclude",),
    )

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, not {self.workers}")


class ServerOptions(TypedDict, total=False):
    """The keyword arguments `serve` and `run` accept: the fields of `ServerConfig`.

    A typing mirror (mypy cannot derive a TypedDict from a dataclass); a test keeps it
    equal to `ServerConfig`'s fields.
    """

    host: str
    port: int
    uds: str | None
    fd: int | None
    backlog: int
    shutdown_timeout: float
    keep_alive: float
    header_timeout: float
    body_timeout: float
    body_min_rate: float
    body_rate_grace: float
    send_timeout: float
    max_body: int
    max_header_size: int
    root_path: str
    limit_concurrency: int | None
    limit_connections: int | None
    limit_max_requests: int | None
    access_log: bool
    proxy_headers: bool
    forwarded_allow_ips: str
    ssl_keyfile: str | None
    ssl_certfile: str | None
    ssl_keyfile_password: str | None
    ssl_ca_certs: str | None
    ssl_cert_reqs: int
    ws_ping_interval: float | None
    ws_ping_timeout: float | None
    ws_max_size: int
    headers: tuple[str, ...]
