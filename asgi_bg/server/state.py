"""What every connection of one server shares."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from .._types import ASGIApp
from .config import ServerConfig

if TYPE_CHECKING:
    from .connection import HTTPConnection

logger = logging.getLogger("asgi_bg.server")
access_logger = logging.getLogger("asgi_bg.server.access")


class Call(Protocol):
    """An ASGI call the server runs: an HTTP request cycle or a WebSocket session."""

    @property
    def complete(self) -> bool: ...

    def describe(self) -> str: ...


class ServerState:
    """The app, the settings, and the book-keeping shutdown and limits need.

    `connections` holds every connection whose task is still running. `requests` holds
    every ASGI call still running, including calls whose response is
    complete but whose background work goes on: they count for `limit_concurrency`
    and are the ones reported when shutdown has to cancel.
    """

    __slots__ = ("app", "config", "connections", "lifespan_state", "requests", "shutting_down")

    def __init__(
        self,
        app: ASGIApp,
        config: ServerConfig | None = None,
        lifespan_state: dict[str, Any] | None = None,
    ) -> None:
        self.app = app
        self.config = config or ServerConfig()
        self.lifespan_state: dict[str, Any] = lifespan_state if lifespan_state is not None else {}
        self.requests: set[Call] = set()
        self.connections: set[HTTPConnection] = set()  # open ones, and ones still in calls
        self.shutting_down = False

    def over_capacity(self) -> bool:
        """True when one more ASGI call would exceed `limit_concurrency`."""
        limit = self.config.limit_concurrency
        return limit is not None and len(self.requests) >= limit
