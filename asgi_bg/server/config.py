"""Server settings, shared by `serve`, `run` and the command line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

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


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything the server needs besides the application.

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

    host: str = "127.0.0.1"
    port: int = 8000
    shutdown_timeout: float = 30.0
    keep_alive: float = 5.0
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    body_min_rate: float = DEFAULT_BODY_MIN_RATE
    body_rate_grace: float = DEFAULT_BODY_RATE_GRACE
    send_timeout: float = DEFAULT_SEND_TIMEOUT
    max_body: int = DEFAULT_MAX_BODY
    max_header_size: int = DEFAULT_MAX_HEADER_SIZE
    root_path: str = ""
    limit_concurrency: int | None = None
    access_log: bool = True
    ws_ping_interval: float | None = 20.0
    ws_ping_timeout: float | None = 20.0
    ws_max_size: int = DEFAULT_WS_MAX_SIZE

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, not {self.port}")
        for name in (
            "shutdown_timeout",
            "keep_alive",
            "header_timeout",
            "body_timeout",
            "body_min_rate",
            "body_rate_grace",
            "send_timeout",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.max_body < 0 or self.max_header_size < 1:
            raise ValueError("max_body must be >= 0 and max_header_size >= 1")
        if self.limit_concurrency is not None and self.limit_concurrency < 1:
            raise ValueError("limit_concurrency must be at least 1")
        if self.ws_max_size < 1:
            raise ValueError("ws_max_size must be at least 1")
        if self.root_path.endswith("/"):
            raise ValueError("root_path must not end with '/'")


class ServerOptions(TypedDict, total=False):
    """The keyword arguments `serve` and `run` accept: the fields of `ServerConfig`."""

    host: str
    port: int
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
    access_log: bool
    ws_ping_interval: float | None
    ws_ping_timeout: float | None
    ws_max_size: int
