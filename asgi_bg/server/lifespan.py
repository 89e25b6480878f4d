"""The ASGI lifespan protocol from the server side (the driver is shared with the test
client, see ``asgi_bg._lifespan``)."""

from __future__ import annotations

from .._lifespan import LifespanDriver
from .._types import ASGIApp
from .state import logger


class LifespanFailure(RuntimeError):
    """The app reported `lifespan.startup.failed`: the server must not start."""


class Lifespan(LifespanDriver):
    """The shared driver, logging to the server's logger."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, logger)
