"""SIGTERM to `python -m asgi_bg` with background tasks in flight.

Within `--shutdown-timeout` they finish and the process exits 0. Beyond it they are
cancelled, each named in the log and counted as cancelled, and the process still exits 0
at once, even with a `def` task blocking its thread. Either way every task scheduled is
accounted for: succeeded + failed + cancelled == scheduled.
"""

from __future__ import annotations

import time

import pytest
from reliability_support import (
    KeepAliveClient,
    asgi_bg_command,
    server_process,
    started_port,
    stats_line,
)

pytestmark = pytest.mark.anyio


def accounted_for(stats: dict[str, int]) -> bool:
    done = stats["succeeded"] + stats["failed"] + stats["cancelled"] + stats["discarded"]
    return done == stats["scheduled"] and stats["pending"] == stats["running"] == 0


async def post_all(port: int, targets: list[str]) -> None:
    client = await KeepAliveClient.connect(port)
    try:
        for target in targets:
            assert (await client.request("POST", target)).status == 200
    finally:
        await client.aclose()


async def test_tasks_in_flight_finish_before_the_process_exits_0(anyio_backend: str) -> None:
    command = asgi_bg_command("--shutdown-timeout", "10", backend=anyio_backend)
    async with server_process(command) as server:
        port = await started_port(server)
        await post_all(port, [f"/slow/s{n}?seconds=0.4" for n in range(5)])
        await server.count("MARK started slow_async", 5)  # in flight when the signal comes
        server.process.terminate()
        assert await server.exit_code() == 0

    stats = stats_line(server)
    assert stats["tasks"]["succeeded"] == stats["tasks"]["scheduled"] == 10
    assert accounted_for(stats["tasks"])
    assert (stats["distinct"], stats["repeated"]) == (10, 0)
    assert len(server.matching("MARK finished")) == 10
    assert not server.matching("Cancelled background task")


async def test_tasks_beyond_the_timeout_are_cancelled_named_and_counted(
    anyio_backend: str,
) -> None:
    command = asgi_bg_command("--shutdown-timeout", "0.5", backend=anyio_backend)
    async with server_process(command) as server:
        port = await started_port(server)
        await post_all(
            port,
            [
                "/slow/quick0?seconds=0.1",  # finishes within the timeout
                "/slow/quick1?seconds=0.1",
                "/slow/long0?seconds=600",  # an async task hangs; its sync task waits
                "/slow/long1?seconds=600",
                "/block/blocked0?seconds=600",  # a def task blocks its thread
                "/block/blocked1?seconds=600",
            ],
        )
        await server.count("MARK started slow_(async:long|sync:blocked)", 4)
        await server.count("MARK finished slow_sync:quick", 2)
        signalled = time.perf_counter()
        server.process.terminate()
        assert await server.exit_code() == 0
        took = time.perf_counter() - signalled

    assert took < 0.5 + 3.0  # the timeout, a second for idle threads, process exit
    stats = stats_line(server)["tasks"]
    assert (stats["scheduled"], stats["succeeded"], stats["cancelled"]) == (10, 4, 6)
    assert accounted_for(stats)
    for name, path in [
        ("slow_async", "/slow/long0"),
        ("slow_sync", "/slow/long0"),  # never started: cancelled all the same
        ("slow_async", "/slow/long1"),
        ("slow_sync", "/slow/long1"),
        ("slow_sync", "/block/blocked0"),
        ("slow_sync", "/block/blocked1"),
    ]:
        pattern = f"Cancelled background task reliability_apps\\.{name} of POST {path}$"
        assert len(server.matching(pattern)) == 1, (pattern, server.text())
    if anyio_backend == "asyncio":  # trio's worker threads are daemons
        assert server.matching("Exiting with 2 thread\\(s\\) still running work")
