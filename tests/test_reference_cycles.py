"""A served request leaves nothing for the garbage collector.

Objects in a reference cycle outlive their request until a collection finds them; one
cycle per request made the collector run every ~140 requests and cost more than a
tenth of a request with one task. These tests serve requests straight through the ASGI
callable and look at what a collection would free.
"""

import gc
from collections.abc import Iterator
from typing import Annotated

import pytest
from asgi_support import http_scope

from asgi_bg import App, BackgroundTasks, Depends, PlainTextResponse
from asgi_bg._types import Message

pytestmark = pytest.mark.anyio


def _app(done: list[str]) -> App:
    app = App()

    async def note(what: str) -> None:
        done.append(what)

    def with_task(background_tasks: BackgroundTasks, q: str | None = None) -> str | None:
        background_tasks.add_task(note, f"dependency {q}")
        return q

    def resource() -> Iterator[str]:
        yield "resource"

    @app.post("/tasks/{name}")
    async def tasks(
        name: str,
        background_tasks: BackgroundTasks,
        q: Annotated[str | None, Depends(with_task)],
        held: Annotated[str, Depends(resource)],
    ) -> dict[str, str]:
        background_tasks.add_task(note, f"handler {name}")
        return {"name": name}

    @app.post("/response-background")
    async def response_background(background_tasks: BackgroundTasks) -> PlainTextResponse:
        background_tasks.add_task(note, "injected")
        return PlainTextResponse("ok", background=background_tasks)

    @app.post("/unused")
    async def unused(background_tasks: BackgroundTasks) -> str:
        return "nothing queued"

    return app


async def _serve(app: App, path: str) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(http_scope(path, "POST", query=b"q=x"), receive, send)
    return sent


@pytest.mark.parametrize("path", ["/tasks/a", "/response-background", "/unused"])
async def test_a_request_with_background_tasks_leaves_no_cycle(path: str) -> None:
    done: list[str] = []
    app = _app(done)
    await _serve(app, path)  # warm-up: first-use caches are not per-request garbage
    gc.collect()
    before = len(done)
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(5):
            sent = await _serve(app, path)
            assert sent[0]["status"] == 200
        gc.collect()
        left = [type(o) for o in gc.garbage if type(o).__module__.startswith("asgi_bg")]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert len(done) - before == 5 * {"/tasks/a": 2, "/response-background": 1}.get(path, 0)
    assert left == []
