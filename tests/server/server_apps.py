"""Apps the command-line tests serve by import path (`server_apps:app`)."""

from __future__ import annotations

import sys

from asgi_bg._types import Receive, Scope, Send


def _say(text: str) -> None:
    # Progress marks on stderr: the tests synchronise on them instead of sleeping.
    print(text, file=sys.stderr, flush=True)


async def _lifespan(receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "lifespan.startup.complete"})
    await receive()
    _say("MARK lifespan shutdown")
    await send({"type": "lifespan.shutdown.complete"})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """`/wait-for-body` answers only once its body arrived; anything else at once."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["path"] == "/wait-for-body":
        _say("MARK waiting for the body")
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"got " + body})


async def failing_startup(scope: Scope, receive: Receive, send: Send) -> None:
    """Reports a failed startup."""
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "no database"})
