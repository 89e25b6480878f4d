"""Load: thousands of requests over many keep-alive connections, each queuing an async and
a sync task. Every task runs exactly once, the runner's counts agree, nothing is left
running, threads stay bounded and come back down, and memory does not creep.

CI-sized here; `python -m benchmarks.reliability` runs the same checks larger.
"""

from __future__ import annotations

import gc
import threading
from typing import Any

import anyio
import pytest
from reliability_apps import make_app, rss_bytes
from reliability_support import (
    embedded,
    fetch_json,
    run_load,
    server_process,
    started_port,
    stats_line,
    threads_settle,
    uvicorn_command,
)

from asgi_bg import App

REQUESTS = 2000
# The warm-up has the run's shape: the task backlog (and so the heap's high-water mark)
# under this load grows with the requests of a run, and the allocator keeps what it got.
WARM_UP = REQUESTS
CONNECTIONS = 50
TASK_THREADS = 8
# Resident memory may grow by at most this much from the end of the warm-up to the end of
# the run; the app's own ledger keeps ~0.4 MiB of keys per run. Measured: 0.2-1.9 MiB
# alone, up to 4.3 MiB inside the whole suite on a busy machine (the run's task backlog,
# and so the heap's high-water mark, outgrew the warm-up's). A request kept alive costs
# more than 4 KiB (scope, context, tasks, buffers): 2000 of them would pass 8 MiB.
RSS_GROWTH_BOUND = 8 * 1024 * 1024
JOIN_LIMIT = 20.0


def expected_keys(prefix: str, requests: int, connections: int) -> set[str]:
    keys = set()
    for index in range(connections):
        share = requests // connections + (index < requests % connections)
        for n in range(share):
            keys |= {f"async:{prefix}-{index}-{n}", f"sync:{prefix}-{index}-{n}"}
    return keys


def assert_each_task_ran_once(app: App, requests: int) -> None:
    """Every queued task ran exactly once, and `stats()` says the same."""
    runs = app.state.ledger.runs
    keys = expected_keys("warm", WARM_UP, CONNECTIONS)
    keys |= expected_keys("load", requests, CONNECTIONS)
    assert set(runs) == keys, "a task ran that was not queued, or a queued one never ran"
    assert {runs[key] for key in keys} == {1}, "a task ran more than once"
    assert app.tasks.stats() == {
        **app.tasks.stats(),
        "scheduled": len(keys),
        "pending": 0,
        "running": 0,
        "succeeded": len(keys),
        "failed": 0,
        "cancelled": 0,
        "discarded": 0,
    }


def measure() -> tuple[int, int]:
    gc.collect()
    return threading.active_count(), rss_bytes()


@pytest.mark.anyio
async def test_embedded_server_runs_every_task_once_under_load(anyio_backend: str) -> None:
    app = make_app(task_threads=TASK_THREADS)
    threads_before = threading.active_count()
    peak = threads_before

    async def watch_threads() -> None:
        nonlocal peak
        while True:
            peak = max(peak, threading.active_count())
            await anyio.sleep(0.005)

    async with embedded(app) as server, anyio.create_task_group() as watcher:
        watcher.start_soon(watch_threads)
        warm = await run_load(server.port, WARM_UP, CONNECTIONS, prefix="warm")
        with anyio.fail_after(JOIN_LIMIT):
            await app.tasks.join()
        threads_warm, rss_warm = measure()

        report = await run_load(server.port, REQUESTS, CONNECTIONS, prefix="load")
        with anyio.fail_after(JOIN_LIMIT):
            await app.tasks.join()
        threads_loaded, rss_loaded = measure()
        watcher.cancel_scope.cancel()

    assert warm.errors == report.errors == []
    assert report.statuses == {200: REQUESTS}
    assert_each_task_ran_once(app, REQUESTS)
    # `def` tasks take threads from the app's own limiter and nothing else: the pool
    # never grows past it, whatever the number of requests. (+1: the client's name
    # resolution, which asyncio runs in an executor thread of its own.)
    assert peak <= threads_before + TASK_THREADS + 1, (threads_before, peak)
    assert await threads_settle(threads_warm) <= threads_warm, (threads_warm, threads_loaded)
    assert rss_loaded - rss_warm < RSS_GROWTH_BOUND, (rss_warm, rss_loaded)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # uvicorn's loop; the client's too
@pytest.mark.anyio
async def test_uvicorn_runs_every_task_once_under_load(anyio_backend: str) -> None:
    async with server_process(uvicorn_command()) as server:
        port = await started_port(server)
        warm = await run_load(port, WARM_UP, CONNECTIONS, prefix="warm")
        await fetch_json(port, "POST", "/join")
        before: dict[str, Any] = await fetch_json(port, "GET", "/stats")

        report = await run_load(port, REQUESTS, CONNECTIONS, prefix="load")
        counts = await fetch_json(port, "POST", "/join")
        after: dict[str, Any] = await fetch_json(port, "GET", "/stats")

        server.process.terminate()
        # uvicorn re-raises SIGTERM once it has shut down gracefully.
        assert await server.exit_code() in (0, -15)

    assert warm.errors == report.errors == []
    assert report.statuses == {200: REQUESTS}
    total = 2 * (WARM_UP + REQUESTS)
    assert (counts["scheduled"], counts["succeeded"]) == (total, total)
    assert (counts["pending"], counts["running"], counts["failed"]) == (0, 0, 0)
    assert (after["distinct"], after["repeated"], after["total"]) == (total, 0, total)
    assert after["threads"] <= before["threads"] + 40  # the app's default task_threads
    assert after["rss"] - before["rss"] < RSS_GROWTH_BOUND, (before["rss"], after["rss"])
    final = stats_line(server)  # printed by the app at the end of lifespan shutdown
    assert final["tasks"]["succeeded"] == final["tasks"]["scheduled"] == total
    assert final["repeated"] == 0
