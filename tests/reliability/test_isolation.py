"""Blocking `def` tasks do not slow endpoints down, and `limit_concurrency` refuses
instead of queueing: the two ways background work could starve the requests."""

from __future__ import annotations

import time

import anyio
import pytest
from reliability_apps import make_app
from reliability_support import (
    KeepAliveClient,
    LoadReport,
    asgi_bg_command,
    embedded,
    run_load,
    server_process,
    started_port,
    stats_line,
)

from asgi_bg import App

pytestmark = pytest.mark.anyio

BLOCKED = 60  # default task_threads is 40: 40 block their threads, 20 wait for one
BLOCK_FOR = 2.0  # seconds of traffic while every task thread is blocked
# No request may take longer than this while the tasks block (measured: max 10-40 ms
# on a quiet machine). A request that waited for a blocked task would take the 10 s the
# tasks block for; the bound sits far below that and far above a loaded machine's
# scheduling delays, which made a tight bound fail for no fault of the server.
LATENCY_BOUND = 2.0
LIMIT = 10.0


async def wait_for_stats(app: App, **expected: int) -> None:
    """Bounded wait until `app.tasks.stats()` shows `expected`."""
    with anyio.fail_after(LIMIT):
        # Counts change from worker threads too: there is no event to wait on.
        while any(app.tasks.stats()[key] != value for key, value in expected.items()):  # noqa: ASYNC110
            await anyio.sleep(0.01)


async def traffic(port: int, target: str, until: float, report: LoadReport) -> None:
    """Requests in sequence on one keep-alive connection until `until` (perf_counter)."""
    client = await KeepAliveClient.connect(port)
    try:
        while time.perf_counter() < until:
            report.add(await client.request("GET", target))
    finally:
        await client.aclose()


async def test_blocked_task_threads_never_delay_async_or_def_endpoints() -> None:
    app = make_app()  # task_threads=40, as by default
    ledger = app.state.ledger
    try:
        async with embedded(app) as server:
            report = await run_load(server.port, BLOCKED, 10, target="/block/{ident}?seconds=10")
            assert report.statuses == {200: BLOCKED}  # answered before their tasks ran
            await wait_for_stats(app, running=40, pending=BLOCKED - 40)

            reports = {"/async": LoadReport(), "/sync": LoadReport()}
            until = time.perf_counter() + BLOCK_FOR
            async with anyio.create_task_group() as group:
                for target, target_report in reports.items():
                    for _ in range(5):
                        group.start_soon(traffic, server.port, target, until, target_report)
            # All along, every task thread was blocked and the rest still waited.
            assert (app.tasks.stats()["running"], app.tasks.stats()["pending"]) == (40, 20)
            ledger.release.set()
            with anyio.fail_after(LIMIT):
                await app.tasks.join()
    finally:
        ledger.release.set()

    for target, target_report in reports.items():
        assert set(target_report.statuses) == {200}, target
        assert target_report.requests > 50, (target, target_report.figures())
        assert max(target_report.latencies) < LATENCY_BOUND, (target, target_report.figures())
    assert app.tasks.stats()["succeeded"] == BLOCKED


async def test_limit_concurrency_refuses_with_503_instead_of_queueing() -> None:
    """Calls whose tasks still run count against the limit; beyond it, 503 at once."""
    app = make_app()
    ledger = app.state.ledger
    try:
        async with embedded(app, limit_concurrency=4) as server:
            held = await run_load(server.port, 4, 4, target="/block/{ident}?seconds=10")
            assert held.statuses == {200: 4}
            await wait_for_stats(app, running=4)

            refused = await run_load(server.port, 40, 40, target="/work/{ident}")
            assert refused.statuses == {503: 40}
            assert max(refused.latencies) < LATENCY_BOUND  # refused, not queued
            assert app.tasks.stats()["scheduled"] == 4  # none of them reached the app

            ledger.release.set()
            with anyio.fail_after(LIMIT):
                await app.tasks.join()
            # The capacity came back. (A keep-alive client's next request may come while
            # its previous call still runs its tasks: that call counts, so each of these
            # connections makes one request with tasks.)
            again = await run_load(server.port, 4, 4, target="/work/{ident}")
            plain = await run_load(server.port, 40, 4, method="GET", target="/async")
            assert (again.statuses, plain.statuses) == ({200: 4}, {200: 40})
    finally:
        ledger.release.set()


async def test_limit_concurrency_flag_of_the_command_line(anyio_backend: str) -> None:
    command = asgi_bg_command(
        "--limit-concurrency", "2", "--shutdown-timeout", "0.5", backend=anyio_backend
    )
    async with server_process(command) as server:
        port = await started_port(server)
        held = await run_load(port, 2, 2, target="/block/{ident}?seconds=30")
        assert held.statuses == {200: 2}
        await server.count("MARK started slow_sync", 2)
        refused = await run_load(port, 10, 10, target="/work/{ident}")
        assert refused.statuses == {503: 10}
        server.process.terminate()
        assert await server.exit_code() == 0
    # The two blocked tasks outlived the shutdown timeout: cancelled and named, not lost.
    stats = stats_line(server)["tasks"]
    assert (stats["scheduled"], stats["cancelled"], stats["succeeded"]) == (2, 2, 0)
    assert len(server.matching(r"Cancelled background task reliability_apps\.slow_sync")) == 2
