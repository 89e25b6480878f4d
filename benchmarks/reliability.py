"""The reliability checks of `tests/reliability/`, larger, with figures for the README.

    python -m benchmarks.reliability [--requests 20000] [--connections 100]

For the embedded server (asyncio and trio, in-process) and uvicorn (`--http h11`, a
subprocess), on 127.0.0.1: a warm-up run, then a measured run of the same size, each
request queuing one async and one sync task. Reported: requests answered, tasks queued,
tasks that ran exactly once, tasks lost (queued but never run, or run twice: must be 0),
threads, resident memory growth from the end of the warm-up, latency. Then the
blocking check: every task thread blocked while async and `def` endpoints are timed.
Then the slow-body check: `--slow-clients` clients drip a 1000-byte body one byte every
`--drip-every` seconds into a server with `--limit-concurrency` equal to their number,
while a legitimate client asks for `/async` four times a second; once with the default
minimum body rate, once with it off (as before it existed). Reported: how the legitimate
requests fared (statuses, when the first was served, latency) and how the slow clients
ended. First of all, the task flood of `benchmarks/flood.py` (a one-second `def` task per
POST): resident memory and refusals with the default `max_pending_tasks`, then with no
bound. Prints Markdown tables; the JSON goes to `benchmarks/results/` (not committed).
`--only-slow-body` runs the slow-body check alone (about 45 s).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import ByteStream

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "reliability"))

from reliability_apps import make_app, rss_bytes
from reliability_support import (
    Exchange,
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

from asgi_bg import Request
from asgi_bg.server import ServerOptions
from benchmarks import flood

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


async def drip(port: int, every: float, ended: list[tuple[str, float]], start: float) -> None:
    """One slow client: a 1000-byte body, one byte every `every` seconds."""
    answer = b""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        async with anyio.create_task_group() as group:
            group.start_soon(_drip_bytes, stream, every)
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                while True:
                    answer += await stream.receive()
            group.cancel_scope.cancel()
    # Not reached when the run stops first: those count as still sending. Otherwise the
    # status of the server's answer, or how the connection ended without one.
    ended.append((answer[9:12].decode() if answer else "closed", time.perf_counter() - start))


async def _drip_bytes(stream: ByteStream, every: float) -> None:
    with contextlib.suppress(anyio.BrokenResourceError, OSError):
        for _ in range(1000):
            await stream.send(b"x")
            await anyio.sleep(every)


async def slow_body_run(
    clients: int, every: float, seconds: float, min_rate: float | None
) -> dict[str, Any]:
    """Slow-body clients against a legitimate one; `min_rate` None: the default."""
    app = make_app()

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    options: ServerOptions = {"limit_concurrency": clients}
    if min_rate is not None:
        options["body_min_rate"] = min_rate
    timeline: list[tuple[float, Exchange]] = []
    ended: list[tuple[str, float]] = []
    async with embedded(app, limit=seconds + 60, **options) as server:
        start = time.perf_counter()
        async with anyio.create_task_group() as slow:
            for _ in range(clients):
                slow.start_soon(drip, server.port, every, ended, start)
            await anyio.sleep(0.5)  # let them take every slot
            while time.perf_counter() - start < seconds:
                client = await KeepAliveClient.connect(server.port)
                try:
                    timeline.append(
                        (time.perf_counter() - start, await client.request("GET", "/async"))
                    )
                finally:
                    await client.aclose()
                await anyio.sleep(0.25)
            slow.cancel_scope.cancel()
    return slow_body_figures(timeline, ended, clients)


def slow_body_figures(
    timeline: list[tuple[float, Exchange]], ended: list[tuple[str, float]], clients: int
) -> dict[str, Any]:
    statuses: dict[int, int] = {}
    for _, exchange in timeline:
        statuses[exchange.status] = statuses.get(exchange.status, 0) + 1
    served = [(at, e.seconds) for at, e in timeline if e.status == 200]
    ok = [seconds for _, seconds in served]
    endings = {status: sum(1 for s, _ in ended if s == status) for status, _ in ended}
    endings["still sending"] = clients - len(ended)
    times = [at for _, at in ended]
    return {
        "legit_statuses": statuses,
        "first_served_s": round(served[0][0], 2) if served else None,
        "legit_200_p50_ms": round(statistics.median(ok) * 1000, 2) if ok else None,
        "legit_200_max_ms": round(max(ok) * 1000, 2) if ok else None,
        "slow_ended": endings,
        "slow_ended_after_s": [round(min(times), 2), round(max(times), 2)] if times else None,
    }


def slow_body_table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| body_min_rate | legitimate requests | first served after | latency p50 / max "
        "(200s) | slow clients ended | between |",
        "|---|---|--:|---|---|---|",
    ]
    for name, r in results.items():
        between = r["slow_ended_after_s"]
        span = f"{between[0]} - {between[1]} s" if between else "-"
        lines.append(
            f"| {name} | {r['legit_statuses']} | {r['first_served_s']} s | "
            f"{r['legit_200_p50_ms']} / {r['legit_200_max_ms']} ms | {r['slow_ended']} | "
            f"{span} |"
        )
    return "\n".join(lines)


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
    parser.add_argument("--slow-clients", type=int, default=50)
    parser.add_argument("--drip-every", type=float, default=2.0, help="seconds per byte")
    parser.add_argument("--slow-seconds", type=float, default=20.0, help="per slow-body run")
    parser.add_argument("--only-slow-body", action="store_true", help="skip the other runs")
    parser.add_argument("--flood-requests", type=int, default=20_000, help="0: no flood run")
    args = parser.parse_args()
    floods = [
        anyio.run(flood.flood, bound, args.flood_requests, 64)
        for bound in ([None, "none"] if args.flood_requests else [])
    ]
    if floods:
        print(flood.table(floods), flush=True)
    slow_body = {
        name: anyio.run(slow_body_run, args.slow_clients, args.drip_every, args.slow_seconds, rate)
        for name, rate in (("default (240 B/s after 5 s)", None), ("0 (off)", 0.0))
    }
    print(slow_body_table(slow_body), flush=True)
    if args.only_slow_body:
        return
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
    report = {
        "args": vars(args),
        "load": results,
        "blocking": blocking,
        "slow_body": slow_body,
        "flood": floods,
    }
    out.write_text(json.dumps(report))
    print(f"\nwritten to {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")


if __name__ == "__main__":
    main()
