"""Drive each contender's ASGI callable directly, with prebuilt scopes and no sockets.

A batch is timed from the first call until the last call returned *and* every task it
queued ran (Starlette and FastAPI run tasks inside the call; asgi_bg's ``app.tasks.join``
is awaited inside the timed region in case it defers them). Every status and the number
of tasks that ran are checked, so a contender cannot win by skipping work.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from time import perf_counter, perf_counter_ns
from typing import Literal

from benchmarks.contenders import Contender, rotated
from benchmarks.workload import (
    COUNTERS,
    ENDPOINTS_BY_KEY,
    ASGIApp,
    BenchmarkError,
    Endpoint,
    Message,
    Scope,
    check_content,
)

Mode = Literal["sequential", "concurrent"]
MODES: tuple[Mode, ...] = ("sequential", "concurrent")
# mode -> endpoint key -> contender name -> microseconds per request, one value per round
Samples = dict[str, dict[str, dict[str, list[float]]]]

_REQUEST: Message = {"type": "http.request", "body": b"", "more_body": False}
_DISCONNECT: Message = {"type": "http.disconnect"}
_LIFESPAN_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class InProcessSettings:
    rounds: int
    requests: int  # per batch for endpoints with tasks; task-free ones get 5x (they are fast)
    callers: int  # concurrent callers on the one event loop
    endpoints: tuple[str, ...]

    def batch_size(self, endpoint: Endpoint) -> int:
        count = self.requests if endpoint.tasks else self.requests * 5
        return max(self.callers, count - count % self.callers)


def build_scope(endpoint: Endpoint) -> Scope:
    """The scope a server would build for ``endpoint``; copied per call, as apps may add keys."""
    headers = [(b"host", b"testserver"), (b"user-agent", b"asgi-bg-bench")]
    if endpoint.method == "POST":
        headers.append((b"content-length", b"0"))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": endpoint.method,
        "scheme": "http",
        "path": endpoint.path,
        "raw_path": endpoint.path.encode(),
        "root_path": "",
        "query_string": endpoint.query.encode(),
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def call(app: ASGIApp, scope: Scope) -> int:
    """One request, kept as lean as possible: the harness cost lands on every contender."""
    status = 0
    pending = True

    async def receive() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return _REQUEST
        return _DISCONNECT

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(dict(scope), receive, send)
    return status


async def fetch(app: ASGIApp, scope: Scope, request_body: bytes = b"") -> tuple[int, bytes]:
    """One request (with ``request_body``) keeping the answer's body."""
    status = 0
    body = bytearray()
    received = False
    request = {**_REQUEST, "body": request_body} if request_body else _REQUEST

    async def receive() -> Message:
        nonlocal received
        if received:
            return _DISCONNECT
        received = True
        return request

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    await app(dict(scope), receive, send)
    return status, bytes(body)


async def _expect(outbox: asyncio.Queue[Message], wanted: str) -> None:
    message = await asyncio.wait_for(outbox.get(), _LIFESPAN_TIMEOUT)
    if message["type"] != wanted:
        raise BenchmarkError(f"lifespan: expected {wanted}, got {message}")


async def _serve(
    app: ASGIApp, scope: Scope, inbox: asyncio.Queue[Message], outbox: asyncio.Queue[Message]
) -> None:
    await app(scope, inbox.get, outbox.put)


@asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Run the app's lifespan around the benchmark, as a server would."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
    scope["state"] = {}
    task = asyncio.create_task(_serve(app, scope, inbox, outbox))
    await inbox.put({"type": "lifespan.startup"})
    await _expect(outbox, "lifespan.startup.complete")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await _expect(outbox, "lifespan.shutdown.complete")
        await asyncio.wait_for(task, _LIFESPAN_TIMEOUT)


async def run_calls(app: ASGIApp, scope: Scope, count: int, status: int) -> None:
    for _ in range(count):
        got = await call(app, scope)
        if got != status:
            raise BenchmarkError(f"{scope['method']} {scope['path']} answered {got}, not {status}")


async def _run_concurrent(app: ASGIApp, scope: Scope, count: int, callers: int) -> None:
    share = count // callers
    await asyncio.gather(*(run_calls(app, scope, share, 200) for _ in range(callers)))


def _check_tasks(label: str, before: dict[str, int], expected: int) -> None:
    after = COUNTERS.snapshot()
    queued, done = after["queued"] - before["queued"], after["done"] - before["done"]
    if queued != expected or done != expected:
        raise BenchmarkError(f"{label}: {queued} tasks queued, {done} ran, expected {expected}")


async def time_batch(
    contender: Contender, endpoint: Endpoint, mode: Mode, count: int, callers: int
) -> float:
    """Microseconds per request for ``count`` requests, tasks included."""
    scope = build_scope(endpoint)
    before = COUNTERS.snapshot()
    gc.collect()  # so one contender does not pay for another's garbage
    start = perf_counter_ns()
    if mode == "sequential":
        await run_calls(contender.app, scope, count, 200)
    else:
        await _run_concurrent(contender.app, scope, count, callers)
    if contender.settle is not None:
        await contender.settle()
    elapsed = perf_counter_ns() - start
    _check_tasks(f"{contender.name} {endpoint.label}", before, count * endpoint.tasks)
    return elapsed / count / 1000


async def validate(contender: Contender, endpoint: Endpoint) -> None:
    """Check once, before timing, that the contender answers exactly what is expected."""
    before = COUNTERS.snapshot()
    status, body = await fetch(contender.app, build_scope(endpoint))
    if contender.settle is not None:
        await contender.settle()
    if status != 200:
        raise BenchmarkError(f"{contender.name} {endpoint.label} answered {status}")
    check_content(endpoint, body)
    _check_tasks(f"{contender.name} {endpoint.label}", before, endpoint.tasks)


async def _round(
    contenders: list[Contender], settings: InProcessSettings, mode: Mode, number: int
) -> dict[str, dict[str, float]]:
    timings: dict[str, dict[str, float]] = {}
    for offset, key in enumerate(settings.endpoints):
        endpoint = ENDPOINTS_BY_KEY[key]
        count = settings.batch_size(endpoint)
        for contender in rotated(contenders, number + offset):
            us = await time_batch(contender, endpoint, mode, count, settings.callers)
            timings.setdefault(key, {})[contender.name] = us
    return timings


async def _measure(
    contenders: list[Contender], settings: InProcessSettings, progress: Callable[[str], None]
) -> Samples:
    samples: Samples = {mode: {key: {} for key in settings.endpoints} for mode in MODES}
    for contender in contenders:
        for key in settings.endpoints:
            await validate(contender, ENDPOINTS_BY_KEY[key])
    warmup = InProcessSettings(
        1, max(1, settings.requests // 5), settings.callers, settings.endpoints
    )
    for mode in MODES:
        await _round(contenders, warmup, mode, 0)
    for number in range(1, settings.rounds + 1):
        for mode in MODES:
            started = perf_counter()
            timings = await _round(contenders, settings, mode, number)
            for key, by_contender in timings.items():
                for name, us in by_contender.items():
                    samples[mode][key].setdefault(name, []).append(us)
            seconds = perf_counter() - started
            progress(f"in-process round {number}/{settings.rounds} {mode}: {seconds:.1f} s")
    return samples


async def _run(
    contenders: list[Contender], settings: InProcessSettings, progress: Callable[[str], None]
) -> Samples:
    async with AsyncExitStack() as stack:
        for contender in contenders:
            await stack.enter_async_context(lifespan(contender.app))
        return await _measure(contenders, settings, progress)


def run(
    contenders: list[Contender], settings: InProcessSettings, progress: Callable[[str], None]
) -> Samples:
    """All in-process rounds on one fresh asyncio loop."""
    return asyncio.run(_run(contenders, settings, progress))
