"""Enqueue latency per task backend: what a request that queues one registered task pays.

``python -m benchmarks.enqueue_latency [--requests N] [--rounds R]``

For each backend (in-process, durable SQLite, Celery on Redis) one app serves a route
that queues one call of a registered function; the route is called through the
in-memory test client, one request at a time, and timed until the call returned. With a
backend, that includes journaling or publishing the call before the response started
(the in-process task is a no-op, so it costs the same to run as nothing). Backends take
turns, round after round, in one process and one run; the table gives the median and
p99 per request and the ratio of medians against in-process. A second column times
``backend.submit`` alone. Redis is a ``redis-server`` started on a free loopback port
(the Celery row is left out when it is not installed); no worker runs, so the published
messages just wait in Redis, which is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio

from asgi_bg import App, BackgroundTasks
from asgi_bg.backends import TaskBackend, TaskCall
from asgi_bg.testing import AsyncTestClient


def noop(message: str) -> None:
    """The registered task: nothing to do, so only the enqueue is measured."""


def make_app(backend: TaskBackend | None) -> App:
    app = App(task_backend=backend)
    app.task(noop)

    @app.post("/enqueue")
    async def enqueue(tasks: BackgroundTasks) -> dict[str, bool]:
        tasks.add_task(noop, "hello")
        return {"ok": True}

    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_server() -> Iterator[str | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    process = subprocess.Popen(
        [*command, "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait(10)


def backends(workdir: Path, redis_url: str | None) -> dict[str, Callable[[], TaskBackend | None]]:
    from asgi_bg.backends.durable import DurableBackend  # noqa: PLC0415 - optional extra

    made: dict[str, Callable[[], TaskBackend | None]] = {
        "in-process": lambda: None,
        "durable (SQLite)": lambda: DurableBackend(str(workdir / "tasks.sqlite")),
    }
    if redis_url is not None:
        from celery import Celery  # noqa: PLC0415 - optional extra

        from asgi_bg.backends.celery import CeleryBackend  # noqa: PLC0415

        made["celery (Redis)"] = lambda: CeleryBackend(Celery("bench", broker=redis_url))
    return made


async def measure(
    requests: int, rounds: int, redis_url: str | None
) -> dict[str, dict[str, list[float]]]:
    samples: dict[str, dict[str, list[float]]] = {}
    workdir = Path(tempfile.mkdtemp(prefix="asgi_bg-enqueue-"))
    try:
        async with AsyncExitStack() as stack:
            clients: dict[str, tuple[AsyncTestClient, TaskBackend | None]] = {}
            for name, factory in backends(workdir, redis_url).items():
                backend = factory()
                client = await stack.enter_async_context(AsyncTestClient(make_app(backend)))
                clients[name] = (client, backend)
                samples[name] = {"request": [], "submit": []}
            call = TaskCall(f"{noop.__module__}:{noop.__qualname__}", ["hello"])
            for client, backend in clients.values():  # warm up connections, caches
                for _ in range(20):
                    await client.post("/enqueue")
                    if backend is not None:
                        await backend.submit([call])
            for _ in range(rounds):
                for name, (client, backend) in clients.items():
                    for _ in range(requests):
                        started = time.perf_counter()
                        response = await client.post("/enqueue")
                        samples[name]["request"].append(time.perf_counter() - started)
                        if response.status_code != 200:
                            raise RuntimeError(f"{name}: {response.status_code}")
                        started = time.perf_counter()
                        if backend is not None:
                            await backend.submit([call])
                        samples[name]["submit"].append(time.perf_counter() - started)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return samples


def table(samples: dict[str, dict[str, list[float]]]) -> str:
    def us(values: list[float], quantile: float = 0.5) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] * 1e6

    base = statistics.median(samples["in-process"]["request"])
    lines = [
        "| backend | request median (µs) | request p99 (µs) | ratio vs in-process "
        "| submit median (µs) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in samples.items():
        request = values["request"]
        ratio = statistics.median(request) / base
        lines.append(
            f"| {name} | {us(request):.0f} | {us(request, 0.99):.0f} | {ratio:.1f}x "
            f"| {us(values['submit']):.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=200, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, backends interleaved")
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    args = parser.parse_args(argv)
    with redis_server() as redis_url:
        samples: dict[str, Any] = anyio.run(
            measure, args.requests, args.rounds, redis_url, backend=args.backend
        )
    print(f"{args.requests} requests x {args.rounds} rounds, {args.backend}, pid {os.getpid()}")
    print(table(samples))


if __name__ == "__main__":
    main()
