"""The reliability checks of `tests/reliability/`, larger, with figures for the README.

    python -m benchmarks.reliability [--requests 20000] [--connections 100]

For the embedded server (asyncio and trio, in-process) and uvicorn (`--http h11`, a
subprocess), on 127.0.0.1: a warm-up run, then a measured run of the same size, each
request queuing one async and one sync task. Reported: requests answered, tasks queued,
tasks that ran exactly once, tasks lost (queued but never run, or run twice: must be 0),
threads, resident memory growth from the end of the warm-up, latency. Then the
blocking check: every task thread blocked while async and `def` endpoints are timed.
Prints a Markdown table; the JSON goes to `benchmarks/results/` (not committed).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "reliability"))

from reliability_apps import make_app, rss_bytes
from reliability_support import (
    KeepAliveClient,
    LoadReport,
    embedded,
    fetch_json,
    run_load,
    server_process,
    started_port,
    stats_line,
    uvicorn_command,
)

RESULTS = Path(__file__).resolve().parent / "results"
MIB = 1024 * 1024


def lost(queued: int, runs: dict[str, int]) -> int:
    """Tasks queued that did not run exactly once."""
    return queued - sum(1 for n in runs.values() if n == 1)


async def embedded_run(requests: int, connections: int) -> dict[str, Any]:
    app = make_app()
    threads_before = threading.active_count()
    peak = threads_before

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, threading.active_count())
            await anyio.sleep(0.01)

    async with embedded(app, limit=3600) as server, anyio.create_task_group() as group:
        group.start_soon(watch)
        await run_load(server.port, requests, connections, prefix="warm")
        await app.tasks.join()
        gc.collect()
        rss_warm, threads_warm = rss_bytes(), threading.active_count()
        report = await run_load(server.port, requests, connections, prefix="load")
        await app.tasks.join()
        gc.collect()
        rss_after, threads_after = rss_bytes(), threading.active_count()
        group.cancel_scope.cancel()
    stats = app.tasks.stats()
    return {
        **report.figures(),
        "tasks_queued": 4 * requests,
        "tasks_run_once": sum(1 for n in app.state.ledger.runs.values() if n == 1),
        "tasks_lost": lost(4 * requests, app.state.ledger.runs),
        "stats": stats,
        "threads": {"before": threads_before, "peak": peak, "warm": threads_warm},
        "threads_after": threads_after,
        "rss_growth_mib": round((rss_after - rss_warm) / MIB, 2),
    }


async def uvicorn_run(requests: int, connections: int) -> dict[str, Any]:
    async with server_process(uvicorn_command()) as server:
        port = await started_port(server)
        await run_load(port, requests, connections, prefix="warm")
        await fetch_json(port, "POST", "/join")
        before = await fetch_json(port, "GET", "/stats")
        report = await run_load(port, requests, connections, prefix="load")
        stats = await fetch_json(port, "POST", "/join")
        after = await fetch_json(port, "GET", "/stats")
        server.process.terminate()
        await server.exit_code(limit=60)
    final = stats_line(server)
    run_once = final["distinct"] - final["repeated"]
    return {
        **report.figures(),
        "tasks_queued": 4 * requests,
        "tasks_run_once": run_once,
        "tasks_lost": 4 * requests - run_once,
        "stats": stats,
        "threads": {"warm": before["threads"], "after": after["threads"]},
        "threads_after": after["threads"],
        "rss_growth_mib": round((after["rss"] - before["rss"]) / MIB, 2),
    }


async def blocking_run(seconds: float) -> dict[str, Any]:
    """60 blocking `def` tasks (40 threads busy, 20 waiting) while endpoints are timed."""
    app = make_app()
    ledger = app.state.ledger
    reports = {"/async": LoadReport(), "/sync": LoadReport()}
    try:
        async with embedded(app, limit=600) as server:
            await run_load(server.port, 60, 10, target="/block/{ident}?seconds=600")
            while app.tasks.stats()["running"] < 40:  # noqa: ASYNC110 - counted in threads
                await anyio.sleep(0.01)
            until = time.perf_counter() + seconds

            async def traffic(target: str) -> None:
                client = await KeepAliveClient.connect(server.port)
                while time.perf_counter() < until:
                    reports[target].add(await client.request("GET", target))
                await client.aclose()

            async with anyio.create_task_group() as group:
                for target in reports:
                    for _ in range(5):
                        group.start_soon(traffic, target)
            blocked = app.tasks.stats()
            ledger.release.set()
            await app.tasks.join()
    finally:
        ledger.release.set()
    return {
        "blocked": {"running": blocked["running"], "pending": blocked["pending"]},
        **{target: report.figures() for target, report in reports.items()},
    }


def settle(baseline: int, limit: float = 15.0) -> tuple[int, float]:
    """Wait (bounded) for idle worker threads to end: the count then, and how long it took.

    The event loop has ended; asyncio's workers stop with it, trio's idle ones after 10 s.
    """
    start = time.perf_counter()
    while threading.active_count() > baseline and time.perf_counter() - start < limit:
        time.sleep(0.05)
    return threading.active_count(), round(time.perf_counter() - start, 2)


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| server | requests | non-200 | tasks queued | ran exactly once | lost | "
        "threads | RSS growth | p50 / p99 / max |",
        "|---|--:|--:|--:|--:|--:|---|--:|---|",
    ]
    for name, r in results.items():
        non_200 = sum(n for s, n in r["statuses"].items() if int(s) != 200) + r["errors"]
        threads = ", ".join(f"{k} {v}" for k, v in r["threads"].items())
        lines.append(
            f"| {name} | {r['requests']} | {non_200} | {r['tasks_queued']} | "
            f"{r['tasks_run_once']} | {r['tasks_lost']} | {threads} | "
            f"{r['rss_growth_mib']} MiB | {r['p50_ms']} / {r['p99_ms']} / {r['max_ms']} ms |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="per run (warm-up too)")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--block-seconds", type=float, default=5.0)
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    for backend in ("asyncio", "trio"):
        result = anyio.run(embedded_run, args.requests, args.connections, backend=backend)
        result["threads"]["settled"], result["threads"]["settled_after_s"] = settle(
            result["threads"]["before"]
        )
        results[f"asgi_bg embedded ({backend})"] = result
        print(f"embedded/{backend}: {result}", flush=True)
    results["uvicorn --http h11"] = anyio.run(uvicorn_run, args.requests, args.connections)
    print(f"uvicorn: {results['uvicorn --http h11']}", flush=True)
    blocking = anyio.run(blocking_run, args.block_seconds)
    print(f"blocking: {blocking}", flush=True)
    print()
    print(table(results))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / time.strftime("reliability-%Y%m%d-%H%M%S.json")
    out.write_text(json.dumps({"args": vars(args), "load": results, "blocking": blocking}))
    print(f"\nwritten to {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")


if __name__ == "__main__":
    main()
