"""The ASGI lifespan protocol from the server's side, shared by the embedded server and
the test client.

ASGI lifespan spec: an app that raises (or returns) before answering
``lifespan.startup`` does not support lifespan, and the caller goes on without it; an
app that answers ``lifespan.startup.failed`` must not be served.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ._types import ASGIApp, Message


class LifespanDriver:
    """Runs the app's lifespan call in a task group and exchanges its two events.

    ``state`` is the lifespan state each request's scope gets a copy of; ``supported``
    turns False when the app ends its call without answering startup; ``error`` is what
    the app's call raised, if it raised.
    """

    def __init__(self, app: ASGIApp, logger: logging.Logger) -> None:
        self._app = app
        self._logger = logger
        self.state: dict[str, Any] = {}
        # Capacity 2: startup and shutdown are the only messages ever sent.
        self._to_app, self._from_server = anyio.create_memory_object_stream[Message](2)
        self._answered_startup = False
        self._reply: Message | None = None
        self._replied = anyio.Event()
        self._exited = False
        self.supported = True
        self.error: Exception | None = None

    async def startup(self, task_group: TaskGroup) -> str | None:
        """Start the lifespan call and wait for startup; the failure message if it failed."""
        task_group.start_soon(self._run)
        reply = await self._exchange("lifespan.startup")
        if reply is None or reply["type"] != "lifespan.startup.failed":
            return None
        message = reply.get("message") or "no message given"
        self._logger.error("Application startup failed: %s", message)
        return f"Application startup failed: {message}"

    async def shutdown(self, wait_limit: float = math.inf) -> str | None:
        """Ask the app to shut down, waiting at most ``wait_limit`` seconds; the failure
        message if it answered ``lifespan.shutdown.failed``."""
        if not self.supported or self._exited:
            return None
        failure = None
        with anyio.move_on_after(wait_limit) as scope:
            reply = await self._exchange("lifespan.shutdown")
            if reply is not None and reply["type"] == "lifespan.shutdown.failed":
                failure = f"Application shutdown failed: {reply.get('message') or ''}"
                self._logger.error("%s", failure)
        if scope.cancelled_caught:
            self._logger.error("Application shutdown did not finish within %.1f s", wait_limit)
        return failure

    async def _exchange(self, kind: str) -> Message | None:
        if self._exited:
            return None
        self._replied = anyio.Event()
        self._reply = None
        self._to_app.send_nowait({"type": kind})
        await self._replied.wait()
        return self._reply

    async def _run(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self._app(scope, self._receive, self._send)
        except Exception as exc:
            self.error = exc
            if not self._answered_startup:
                self.supported = False
                self._logger.info("ASGI lifespan not supported by the app (%r); continuing", exc)
            else:
                self._logger.exception("Exception in the ASGI lifespan call")
        else:
            if not self._answered_startup:
                self.supported = False
                self._logger.info("ASGI lifespan not supported by the app; continuing")
        finally:
            self._exited = True
            self._to_app.close()
            self._from_server.close()
            self._replied.set()

    async def _receive(self) -> Message:
        return await self._from_server.receive()

    async def _send(self, message: Message) -> None:
        if str(message["type"]).startswith("lifespan.startup."):
            self._answered_startup = True
        self._reply = message
        self._replied.set()
