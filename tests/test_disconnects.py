"""A client that goes away while the response is sent (ASGI 2.4: ``send`` raises OSError)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from asgi_bg import App, BackgroundTasks, PlainTextResponse, StreamingResponse
from asgi_bg._types import Message
from asgi_bg.testing import TestClient


def scope(path: str) -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}


async def receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def gone(message: Message) -> None:
    raise OSError("client disconnected")


def app_with_task(log: list[str]) -> App:
    app = App()

    @app.get("/json")
    async def json_endpoint(tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add_task(log.append, "json task")
        return {"ok": "yes"}

    @app.get("/response")
    async def response_endpoint(tasks: BackgroundTasks) -> PlainTextResponse:
        tasks.add_task(log.append, "response task")
        return PlainTextResponse("hi")

    @app.get("/stream")
    async def stream_endpoint(tasks: BackgroundTasks) -> StreamingResponse:
        tasks.add_task(log.append, "stream task")
        return StreamingResponse(iter(["a", "b"]))

    return app


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/json", "/response", "/stream"])
async def test_client_gone_while_sending_is_not_an_app_error(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[str] = []
    app = app_with_task(log)

    with caplog.at_level(logging.INFO):
        await app(scope(path), receive, gone)  # returns normally: the server sees nothing

    assert log == [f"{path[1:]} task"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert app.tasks.stats()["succeeded"] == 1


def test_an_oserror_from_the_body_iterator_is_the_apps_own_error(anyio_backend: str) -> None:
    app = App()

    def chunks() -> Iterator[str]:
        yield "first"
        raise OSError("disk on fire")

    @app.get("/")
    async def endpoint() -> StreamingResponse:
        return StreamingResponse(chunks())

    with pytest.raises(OSError, match="disk on fire"):
        TestClient(app, backend=anyio_backend).get("/")
