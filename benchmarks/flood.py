"""The task flood of issue 11, finding 2: memory and refusals under the default bound.

    python -m benchmarks.flood [--requests 30000] [--connections 64]

An embedded server (a subprocess, asyncio) serves ``benchmarks/apps/flood_app.py``:
every POST queues a one-second ``def`` task, far more than 40 task threads can run.
The flood is sent once with asgi_bg's default ``max_pending_tasks`` and once with no
bound. Reported: the server's resident memory before and right after the flood, the
answers (200 / 503), and the runner's counts (``refused`` is what the bound turned away).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "reliability"))

from reliability_support import fetch_json, run_load, server_process, started_port

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024


def server_command() -> list[str]:
    return [
        "-m",
        "asgi_bg",
        "benchmarks.apps.flood_app:app",
        "--port",
        "0",
        "--app-dir",
        str(ROOT),
        "--no-access-log",
        "--shutdown-timeout",
        "1",
    ]


async def flood(bound: str | None, requests: int, connections: int) -> dict[str, Any]:
    """One flood against a fresh server; ``bound`` is FLOOD_MAX_PENDING (None: default)."""
    if bound is None:
        os.environ.pop("FLOOD_MAX_PENDING", None)
    else:
        os.environ["FLOOD_MAX_PENDING"] = bound
    async with server_process(server_command()) as server:
        port = await started_port(server)
        before = await fetch_json(port, "GET", "/stats")
        report = await run_load(port, requests, connections, target="/flood/0")
        after = await fetch_json(port, "GET", "/stats")
        server.process.terminate()
        await server.exit_code(limit=60)
    return {
        "bound": bound or "default",
        "seconds": round(report.seconds, 1),
        "statuses": dict(report.statuses),
        "errors": len(report.errors),
        "rss_before_mib": round(before["rss"] / MIB, 1),
        "rss_after_mib": round(after["rss"] / MIB, 1),
        "rss_growth_mib": round((after["rss"] - before["rss"]) / MIB, 1),
        "pending_and_running": after["pending"] + after["running"],
        "refused": after["refused"],
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| max_pending_tasks | requests in | 200 | 503 | RSS before → after | growth | "
        "tasks parked | refused |",
        "|---|--:|--:|--:|---|--:|--:|--:|",
    ]
    for r in results:
        statuses = r["statuses"]
        lines.append(
            f"| {r['bound']} | {r['seconds']} s | {statuses.get(200, 0)} | "
            f"{statuses.get(503, 0)} | {r['rss_before_mib']} → {r['rss_after_mib']} MiB | "
            f"{r['rss_growth_mib']} MiB | {r['pending_and_running']} | {r['refused']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30_000)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    results = []
    for bound in (None, "none"):
        result = anyio.run(flood, bound, args.requests, args.connections)
        print(json.dumps(result), flush=True)
        results.append(result)
    print()
    print(table(results))


if __name__ == "__main__":
    main()
