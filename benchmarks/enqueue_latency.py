"""Enqueue cost per task backend: what a request that queues one registered task pays,
one at a time (latency) and with 32 concurrent clients (throughput).

``python -m benchmarks.enqueue_latency [--requests N] [--rounds R] [--clients C]``

For each backend (in-process; durable on SQLite and on PostgreSQL; Celery on Redis and
on RabbitMQ) one app serves a route that queues one call of a registered function; the
route is called through the in-memory test client and timed until the call returned.
With a backend, that includes journaling or publishing the call before the response
started (the task is a no-op, so running it costs next to nothing). Latency: one
request at a time, median and p99 per request, the ratio of medians against in-process,
and ``backend.submit`` alone. Throughput: ``--clients`` concurrent clients, requests
accepted (2xx) per second, as a ratio to in-process. Backends take turns, round after
round, in one process (DBOS allows one durable backend per process, so each backend is
started for its turn and stopped after it). The servers are the test suite's own, on
free loopback ports: a row is left out when its server is not installed. No Celery
worker runs: published messages wait in the broker, which is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio
import pytest

from asgi_bg import App, BackgroundTasks
from asgi_bg.backends import TaskBackend, TaskCall
from asgi_bg.testing import AsyncTestClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "backends"))

from backend_support import (
    fresh_database,
    postgres_server,
    rabbitmq_server,
    redis_server,
)

Samples = dict[str, dict[str, list[float]]]


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


def started(stack: ExitStack, server: Callable[[], Iterator[str]]) -> str | None:
    """The URL of a server of the test suite's, stopped with ``stack``; None if missing."""
    body = server()
    try:
        url = next(body)
    except pytest.skip.Exception as missing:
        print(f"left out: {missing}", file=sys.stderr)
        return None
    stack.callback(lambda: next(body, None))
    return url


Factory = Callable[[int], TaskBackend | None]  # the backend for one turn, by its number


def backends(stack: ExitStack, workdir: Path) -> dict[str, Factory]:
    """Each backend's factory, for the servers that could start. Every turn of a durable
    backend gets a new journal: the calls a turn leaves unrun would otherwise run at the
    next turn's start, on the same file, and be timed with it."""
    from asgi_bg.backends.durable import DurableBackend  # noqa: PLC0415 - optional extra

    made: dict[str, Factory] = {
        "in-process": lambda turn: None,
        "durable (SQLite)": lambda turn: DurableBackend(str(workdir / f"tasks-{turn}.sqlite")),
    }
    if postgres := started(stack, postgres_server):
        made["durable (PostgreSQL)"] = lambda turn: DurableBackend(
            fresh_database(postgres, f"asgi_bg_bench_{turn}")
        )
    brokers = {"Redis": redis_server, "RabbitMQ": rabbitmq_server}
    for label, server in brokers.items():
        if broker := started(stack, server):
            made[f"celery ({label})"] = celery_factory(broker)
    return made


def celery_factory(broker: str) -> Factory:
    from celery import Celery  # noqa: PLC0415 - optional extra

    from asgi_bg.backends.celery import CeleryBackend  # noqa: PLC0415

    return lambda turn: CeleryBackend(Celery("bench", broker=broker))


async def one_turn(backend: TaskBackend | None, samples: dict[str, list[float]], args: Any) -> None:
    """Start the backend, warm up, time requests one by one, then concurrently."""
    call = TaskCall(f"{noop.__module__}:{noop.__qualname__}", ["hello"])
    async with AsyncTestClient(make_app(backend)) as client:
        for _ in range(20):  # connections, caches
            await client.post("/enqueue")
        for _ in range(args.requests):
            begun = time.perf_counter()
            response = await client.post("/enqueue")
            samples["request"].append(time.perf_counter() - begun)
            if response.status_code != 200:
                raise RuntimeError(f"answered {response.status_code}")
            begun = time.perf_counter()
            if backend is not None:
                await backend.submit([call])
            samples["submit"].append(time.perf_counter() - begun)
        rate, refused = await throughput(client, args.requests, args.clients)
        samples["throughput"].append(rate)
        samples["refused"].append(refused)


async def throughput(client: AsyncTestClient, requests: int, clients: int) -> tuple[float, int]:
    """Requests accepted (2xx) per second, ``requests`` in all from ``clients`` at once,
    and the number answered otherwise (503: the backend missed the submit deadline)."""
    accepted = 0
    left = requests

    async def one_client() -> None:
        nonlocal accepted, left
        while left > 0:
            left -= 1
            response = await client.post("/enqueue")
            accepted += 200 <= response.status_code < 300

    begun = time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(clients):
            group.start_soon(one_client)
    return accepted / (time.perf_counter() - begun), requests - accepted


def measure(args: Any) -> Samples:
    workdir = Path(tempfile.mkdtemp(prefix="asgi_bg-enqueue-"))
    try:
        with ExitStack() as stack:
            factories = backends(stack, workdir)
            samples: Samples = {
                name: {"request": [], "submit": [], "throughput": [], "refused": []}
                for name in factories
            }
            for turn in range(args.rounds):
                for name, factory in factories.items():
                    backend = factory(turn)
                    anyio.run(one_turn, backend, samples[name], args, backend=args.backend)
            return samples
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def table(samples: Samples, clients: int) -> str:
    def us(values: list[float], quantile: float = 0.5) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] * 1e6

    base = statistics.median(samples["in-process"]["request"])
    base_rate = statistics.median(samples["in-process"]["throughput"])
    lines = [
        "| backend | request median (µs) | request p99 (µs) | latency vs in-process "
        f"| submit median (µs) | accepted/s, {clients} clients | throughput vs in-process "
        "| not accepted |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, values in samples.items():
        request = values["request"]
        rate = statistics.median(values["throughput"])
        lines.append(
            f"| {name} | {us(request):.0f} | {us(request, 0.99):.0f} "
            f"| {statistics.median(request) / base:.1f}x | {us(values['submit']):.0f} "
            f"| {rate:.0f} | {rate / base_rate:.2f}x | {sum(values['refused']):.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=200, help="requests per turn and run")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, backends interleaved")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    args = parser.parse_args(argv)
    samples = measure(args)
    print(
        f"{args.requests} requests x {args.rounds} rounds, {args.clients} concurrent clients "
        f"for throughput, {args.backend}, pid {os.getpid()}"
    )
    print(table(samples, args.clients))


if __name__ == "__main__":
    main()
