"""Where one asgi_bg request with background tasks spends its time and memory, by phase.

Marks are taken from outside the framework, so the numbers need no change to asgi_bg:
the call starts; the handler queues its first task (a ``BackgroundTask`` is made: the
first statement of the benchmark's task handlers); ``http.response.start`` and the final
body reach ``send``; the task runner's ``run`` is entered and left; the call returns.
Times come from one pass and memory from a second one under ``tracemalloc`` (which slows
everything down): the bytes a phase still holds at its end, and the most it held above
its start at any moment (what it allocated and dropped again shows there).
"""

from __future__ import annotations

import asyncio
import statistics
import tracemalloc
from collections.abc import Awaitable, Callable, MutableMapping
from time import perf_counter_ns
from typing import Any

from asgi_bg import App, BackgroundTask
from benchmarks.contenders import load
from benchmarks.inprocess import build_scope, lifespan
from benchmarks.workload import ENDPOINTS_BY_KEY

PHASES = (
    "route, parse, inject",  # call start -> the handler queues its first task
    "handler, render",  # -> http.response.start
    "send the body",  # -> the final body
    "hand the tasks over",  # -> the runner starts
    "run the tasks",  # -> the runner is done
    "teardown, return",  # -> the call returned
)


class _Marks:
    """The moments of one request, as times or as (traced, peak) memory readings."""

    def __init__(self, traced: bool) -> None:
        self.traced = traced
        self.points: list[tuple[int, int]] = []
        self.requests: list[list[tuple[int, int]]] = []

    def mark(self) -> None:
        if self.traced:
            self.points.append(tracemalloc.get_traced_memory())
            tracemalloc.reset_peak()
        else:
            self.points.append((perf_counter_ns(), 0))

    def first_task(self) -> None:
        if len(self.points) == 1:
            self.mark()

    def response(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" or not message.get("more_body"):
            self.mark()

    def end_request(self) -> None:
        if len(self.points) == len(PHASES) + 1:  # a request missing a mark is left out
            self.requests.append(self.points)
        self.points = []


def _instrument(app: App, marks: _Marks) -> Callable[[], None]:
    """Hook the marks into the runner and ``BackgroundTask``; returns the undo."""
    run, make_task = app.tasks.run, BackgroundTask.__init__

    async def marked_run(*args: Any, **kwargs: Any) -> None:
        marks.mark()
        await run(*args, **kwargs)
        marks.mark()

    def marked_make_task(self: BackgroundTask, *args: Any, **kwargs: Any) -> None:
        marks.first_task()
        make_task(self, *args, **kwargs)

    app.tasks.run = marked_run  # type: ignore[method-assign]
    BackgroundTask.__init__ = marked_make_task  # type: ignore[method-assign]

    def undo() -> None:
        del app.tasks.run
        BackgroundTask.__init__ = make_task  # type: ignore[method-assign]

    return undo


async def _requests(app: App, key: str, count: int, marks: _Marks) -> None:
    scope = build_scope(ENDPOINTS_BY_KEY[key])

    async def send(message: dict[str, Any]) -> None:
        marks.response(message)

    for _ in range(count):
        marks.mark()
        await _marked_call(app, scope, send)
        marks.mark()
        marks.end_request()


async def _marked_call(
    app: App, scope: MutableMapping[str, Any], send: Callable[..., Awaitable[None]]
) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    await app(dict(scope), receive, send)


Pick = Callable[[list[tuple[int, int]], int], int]


def _median(marks: _Marks, index: int, pick: Pick) -> float:
    return statistics.median(pick(points, index) for points in marks.requests)


def _span(points: list[tuple[int, int]], index: int) -> int:
    return points[index + 1][0] - points[index][0]


def _peak(points: list[tuple[int, int]], index: int) -> int:
    return points[index + 1][1] - points[index][0]


def _table(times: _Marks, memory: _Marks, key: str) -> str:
    lines = [
        f"asgi_bg {ENDPOINTS_BY_KEY[key].label}: medians of {len(times.requests)} requests",
        f"{'phase':<22} {'µs':>7} {'share':>6} {'bytes kept':>11} {'peak bytes':>11}",
    ]
    spans = [_median(times, index, _span) / 1000 for index in range(len(PHASES))]
    total = sum(spans)
    for index, phase in enumerate(PHASES):
        kept = _median(memory, index, _span)
        peak = _median(memory, index, _peak)
        share = spans[index] / total if total else 0.0
        lines.append(f"{phase:<22} {spans[index]:7.2f} {share:6.0%} {kept:11.0f} {peak:11.0f}")
    lines.append(f"{'total':<22} {total:7.2f}")
    return "\n".join(lines) + "\n"


async def _measure(key: str, requests: int) -> str:
    app = load("asgi_bg").app
    assert isinstance(app, App)
    times, memory = _Marks(traced=False), _Marks(traced=True)
    async with lifespan(app):
        await _requests(app, key, max(1, requests // 10), _Marks(traced=False))  # warm up
        for marks, count in ((times, requests), (memory, max(1, requests // 10))):
            undo = _instrument(app, marks)
            if marks.traced:
                tracemalloc.start()
            try:
                await _requests(app, key, count, marks)
            finally:
                tracemalloc.stop()
                undo()
    return _table(times, memory, key)


def phases(endpoints: tuple[str, ...], requests: int) -> dict[str, str]:
    """The phase table of each endpoint with background tasks (others are skipped)."""
    with_tasks = [key for key in endpoints if ENDPOINTS_BY_KEY[key].tasks]
    return {key: asyncio.run(_measure(key, requests)) for key in with_tasks}
