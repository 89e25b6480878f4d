"""cProfile over one contender's in-process hot path, per endpoint, to find what to optimise.

cProfile sees the event-loop thread only: time spent in worker threads (sync tasks, ``def``
dependencies) shows up as the loop waiting, which is itself the cost of a thread hop.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
from pathlib import Path

from benchmarks.contenders import Contender, load
from benchmarks.inprocess import build_scope, lifespan, run_calls
from benchmarks.workload import ENDPOINTS_BY_KEY


async def _profile_endpoint(contender: Contender, key: str, requests: int) -> cProfile.Profile:
    scope = build_scope(ENDPOINTS_BY_KEY[key])
    await run_calls(contender.app, scope, max(1, requests // 10), 200)  # warm caches first
    profiler = cProfile.Profile()
    profiler.enable()
    await run_calls(contender.app, scope, requests, 200)
    if contender.settle is not None:
        await contender.settle()
    profiler.disable()
    return profiler


def _where(filename: str, line: int, function: str) -> str:
    # The last two path parts tell starlette/routing.py from fastapi/routing.py.
    short = "/".join(Path(filename).parts[-2:]) if filename.startswith("/") else filename
    return f"{short}:{line}({function})"


def _top(profiler: cProfile.Profile, top: int, requests: int) -> str:
    """The ``top`` functions by own time, in µs and calls per request."""
    entries = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)
    total = sum(values[2] for values in entries.values())
    lines = [
        f"{requests} requests, {total * 1e6 / requests:.1f} µs/request under the profiler",
        "per request; a coroutine's every resumption counts as a call",
        f"{'own µs':>8} {'cum µs':>8} {'calls':>6}  function",
    ]
    for (filename, line, function), (_, calls, own, cumulative, _) in rows[:top]:
        lines.append(
            f"{own * 1e6 / requests:8.2f} {cumulative * 1e6 / requests:8.2f} "
            f"{calls / requests:6.1f}  {_where(filename, line, function)}"
        )
    return "\n".join(lines) + "\n"


async def _profile_all(
    name: str, endpoints: tuple[str, ...], requests: int, top: int
) -> dict[str, str]:
    contender = load(name)
    reports = {}
    async with lifespan(contender.app):
        for key in endpoints:
            profiler = await _profile_endpoint(contender, key, requests)
            reports[key] = _top(profiler, top, requests)
    return reports


def profile(
    name: str, endpoints: tuple[str, ...], requests: int, top: int, folder: Path
) -> dict[str, Path]:
    """Profile each endpoint; writes one text report per endpoint and returns their paths."""
    reports = asyncio.run(_profile_all(name, endpoints, requests, top))
    paths = {}
    for key, report in reports.items():
        path = folder / f"profile-{name}-{key}.txt"
        path.write_text(report)
        paths[key] = path
    return paths
