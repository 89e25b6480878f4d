"""Slow clients: heads trickled byte by byte and bodies never finished are timed out
(`header_timeout`, `body_timeout`), and while they hang on, other clients are served
without delay."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from reliability_apps import make_app
from reliability_support import embedded, run_load

from asgi_bg import App

pytestmark = pytest.mark.anyio

# header_timeout and body_timeout: far longer than the healthy load below takes (well
# under a second even on a loaded machine), so "served while the slow ones hang on" is
# an ordering on one event log, not a latency bound.
TIMEOUT = 2.0
# How late a timeout may fire: the idle sweep runs every TIMEOUT / 4, and the machine
# running the tests is shared, so the bound is generous; the point is "not never".
LATE = 3.0
SLOW_CLIENTS = 10  # of each kind


def app_with_upload() -> App:
    app = make_app()

    @app.post("/upload")
    async def upload(data: dict[str, Any]) -> dict[str, Any]:
        return data

    return app


async def trickle_head(port: int, closed_after: list[float], log: list[str]) -> None:
    """Send a never-ending head one byte every 20 ms; note when the server hangs up."""
    start = time.perf_counter()
    head = b"GET /async HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"z" * 1000
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        with anyio.fail_after(TIMEOUT + LATE + 1):  # a hang guard only
            for byte in head:
                try:
                    await stream.send(bytes([byte]))
                    with anyio.move_on_after(0.02):
                        await stream.receive()  # nothing comes but the end
                        break
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    break
    closed_after.append(time.perf_counter() - start)
    log.append("slow client closed")


async def stall_body(port: int, answers: list[tuple[bytes, float]], log: list[str]) -> None:
    """Declare 100 bytes of body, send 10, then nothing: read what the server answers."""
    start = time.perf_counter()
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        head = b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"
        await stream.send(head + b'{"a": "xxx')
        answer = b""
        with anyio.fail_after(TIMEOUT + LATE + 1):  # a hang guard only
            try:
                while chunk := await stream.receive():
                    answer += chunk
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
    answers.append((answer, time.perf_counter() - start))
    log.append("slow client closed")


async def test_slow_clients_are_timed_out_and_do_not_block_others() -> None:
    app = app_with_upload()
    closed_after: list[float] = []
    answers: list[tuple[bytes, float]] = []
    log: list[str] = []
    async with (
        embedded(app, header_timeout=TIMEOUT, body_timeout=TIMEOUT) as server,
        anyio.create_task_group() as group,
    ):
        for _ in range(SLOW_CLIENTS):
            group.start_soon(trickle_head, server.port, closed_after, log)
            group.start_soon(stall_body, server.port, answers, log)
        await anyio.wait_all_tasks_blocked()  # let the slow clients connect first
        report = await run_load(server.port, 200, 4)  # meanwhile, healthy clients
        log.append("healthy load done")

    assert report.errors == []
    assert report.statuses == {200: 200}
    assert log[0] == "healthy load done", log  # served while every slow client hung on
    # The whole head must come within header_timeout, the body within body_timeout.
    assert len(closed_after) == SLOW_CLIENTS
    assert TIMEOUT <= min(closed_after) <= max(closed_after) < TIMEOUT + LATE, closed_after
    assert len(answers) == SLOW_CLIENTS
    for answer, seconds in answers:
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert TIMEOUT <= seconds < TIMEOUT + LATE
