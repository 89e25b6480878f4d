"""The ASGI lifespan protocol from the server side.

ASGI lifespan spec: an app that raises (or returns) before answering
`lifespan.startup` does not support lifespan, and the server goes on without it; an
app that answers `lifespan.startup.failed` must not be served.
"""

from __future__ import annotations

from typing import Any

import anyio
from anyio.abc import TaskGroup

from .._types import ASGIApp, Message
from .state import logger


class LifespanFailure(RuntimeError):
    """The app reported `lifespan.startup.failed`: the server must not start."""


class Lifespan:
    """Runs the app's lifespan call in a task group and exchanges its two events."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self.state: dict[str, Any] = {}  # ASGI: copied into every request's scope
        # Capacity 2: startup and shutdown are the only messages ever sent.
        self._to_app, self._from_server = anyio.create_memory_object_stream[Message](2)
        self._answered_startup = False
        self._reply: Message | None = None
        self._replied = anyio.Event()
        self._exited = False
        self.supported = True

    async def startup(self, task_group: TaskGroup) -> str | None:
        """Start the lifespan call and wait for startup; the failure message if it failed."""
        task_group.start_soon(self._run)
        reply = await self._exchange("lifespan.startup")
        if reply is None or reply["type"] != "lifespan.startup.failed":
            return None
        message = reply.get("message") or "no message given"
        logger.error("Application startup failed: %s", message)
        return f"Application startup failed: {message}"

    async def shutdown(self, wait_limit: float) -> None:
        """Ask the app to shut down; waits at most `wait_limit` seconds."""
        if not self.supported or self._exited:
            return
        with anyio.move_on_after(wait_limit) as scope:
            reply = await self._exchange("lifespan.shutdown")
            if reply is not None and reply["type"] == "lifespan.shutdown.failed":
                logger.error("Application shutdown failed: %s", reply.get("message") or "")
        if scope.cancelled_caught:
            logger.error("Application shutdown did not finish within %.1f s", wait_limit)

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
            if not self._answered_startup:
                self.supported = False
                logger.info("ASGI lifespan not supported by the app (%r); continuing", exc)
            else:
                logger.exception("Exception in the ASGI lifespan call")
        else:
            if not self._answered_startup:
                self.supported = False
                logger.info("ASGI lifespan not supported by the app; continuing")
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
