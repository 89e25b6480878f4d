"""Apps the deployment-flag tests serve by import path (`deploy_apps:app`)."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from asgi_bg._types import Receive, Scope, Send

STARTS = 0


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Every path answers JSON naming the process, the scope's client and scheme."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                print(f"MARK lifespan startup in {os.getpid()}", file=sys.stderr, flush=True)
            kind = message["type"].removeprefix("lifespan.")
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    client = scope.get("client")
    body = {
        "pid": os.getpid(),
        "client": list(client) if client else None,
        "scheme": scope["scheme"],
        "env": os.environ.get("DEPLOY_TEST_VALUE"),
        "loop": _loop_module(),
    }
    if scope["path"] == "/exit":
        os._exit(7)  # a worker dying under load
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def _loop_module() -> str:
    try:
        return type(asyncio.get_running_loop()).__module__
    except RuntimeError:
        return "trio"


def make_app() -> object:
    """For `--factory`."""
    return app
