"""Shared by the reliability tests and `benchmarks/reliability.py`.

A keep-alive load client (h11 over loopback TCP), a server subprocess with a stderr
reader to synchronise on, and the embedded server started on a free port.
Every wait here is bounded.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any, Unpack

import anyio
import h11
from anyio.abc import ByteStream, Process, TaskStatus

from asgi_bg._types import ASGIApp
from asgi_bg.server import ServerOptions, serve

HERE = Path(__file__).resolve().parent
# A subprocess start includes imports; still far above what any step takes.
PROCESS_LIMIT = 15.0
STEP_LIMIT = 10.0


# --- a keep-alive load client -----------------------------------------------------------------


class ClientError(Exception):
    """The server closed or broke the connection while a request was outstanding."""


@dataclass
class Exchange:
    status: int
    body: bytes
    seconds: float
    headers: dict[bytes, bytes] = field(default_factory=dict)


class KeepAliveClient:
    """One TCP connection, requests in sequence, parsed with h11."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)

    @classmethod
    async def connect(cls, port: int) -> KeepAliveClient:
        return cls(await anyio.connect_tcp("127.0.0.1", port))

    async def request(
        self, method: str, target: str, body: bytes = b"", headers: Sequence[Any] = ()
    ) -> Exchange:
        start = perf_counter()
        conn = self.h11
        if conn.our_state is h11.DONE:
            conn.start_next_cycle()
        head = [("host", "127.0.0.1"), ("content-length", str(len(body))), *headers]
        data = conn.send(h11.Request(method=method, target=target, headers=head)) or b""
        if body:
            data += conn.send(h11.Data(data=body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        await self.stream.send(data)
        return await self._response(start)

    async def _response(self, start: float) -> Exchange:
        status, body, headers = 0, b"", {}
        with anyio.fail_after(STEP_LIMIT):
            while True:
                event = self.h11.next_event()
                if event is h11.NEED_DATA:
                    await self._receive()
                elif isinstance(event, h11.Response):
                    status, headers = event.status_code, dict(event.headers)
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    return Exchange(status, body, perf_counter() - start, headers)
                elif isinstance(event, h11.ConnectionClosed):
                    raise ClientError("connection closed before the response")

    async def _receive(self) -> None:
        try:
            data = await self.stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError) as exc:
            raise ClientError("connection closed by the server") from exc
        self.h11.receive_data(data)

    async def aclose(self) -> None:
        await self.stream.aclose()


@dataclass
class LoadReport:
    """What a load run saw, client side."""

    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies)

    def add(self, exchange: Exchange) -> None:
        self.statuses[exchange.status] = self.statuses.get(exchange.status, 0) + 1
        self.latencies.append(exchange.seconds)

    def percentile(self, p: float) -> float:
        if len(self.latencies) < 2:
            return max(self.latencies, default=0.0)
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(p) - 1]

    def figures(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "statuses": self.statuses,
            "errors": len(self.errors),
            "seconds": round(self.seconds, 3),
            "rps": round(self.requests / self.seconds) if self.seconds else 0,
            "p50_ms": round(self.percentile(50) * 1000, 2),
            "p99_ms": round(self.percentile(99) * 1000, 2),
            "max_ms": round(max(self.latencies, default=0.0) * 1000, 2),
        }


async def run_load(
    port: int,
    requests: int,
    connections: int,
    *,
    method: str = "POST",
    target: str = "/work/{ident}",
    prefix: str = "r",
) -> LoadReport:
    """`requests` requests spread over `connections` keep-alive connections at once.

    `{ident}` in the target becomes a unique `prefix-connection-n` per request.
    """
    report = LoadReport()
    # Connected one after the other before the load starts: name resolution runs in a
    # thread, and concurrent connects would add threads that are the client's, not the
    # server's.
    clients = []
    for _ in range(connections):
        try:
            clients.append(await KeepAliveClient.connect(port))
        except OSError as exc:
            report.errors.append(f"connect: {exc}")

    async def one_connection(index: int, client: KeepAliveClient, count: int) -> None:
        try:
            for n in range(count):
                ident = f"{prefix}-{index}-{n}"
                report.add(await client.request(method, target.format(ident=ident)))
        except (ClientError, OSError, h11.ProtocolError) as exc:
            report.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            await client.aclose()

    start = perf_counter()
    async with anyio.create_task_group() as group:
        for index, client in enumerate(clients):
            share = requests // connections + (index < requests % connections)
            group.start_soon(one_connection, index, client, share)
    report.seconds = perf_counter() - start
    return report


async def fetch_json(port: int, method: str, target: str) -> Any:
    """One request on a fresh connection; the JSON answer."""
    client = await KeepAliveClient.connect(port)
    try:
        exchange = await client.request(method, target)
    finally:
        await client.aclose()
    assert exchange.status == 200, exchange
    return json.loads(exchange.body)


# --- the embedded server, in-process ------------------------------------------------------------


@dataclass
class Embedded:
    port: int
    stop: anyio.Event


@asynccontextmanager
async def embedded(
    app: ASGIApp, limit: float = 60.0, **options: Unpack[ServerOptions]
) -> AsyncIterator[Embedded]:
    """`serve` on a free loopback port; graceful shutdown when the block exits."""
    stop = anyio.Event()
    options.setdefault("port", 0)
    options.setdefault("access_log", False)
    with anyio.fail_after(limit):
        async with anyio.create_task_group() as group:
            port = await group.start(_serve_until, app, stop, options)
            yield Embedded(port, stop)
            stop.set()


async def _serve_until(
    app: ASGIApp, stop: anyio.Event, options: ServerOptions, *, task_status: TaskStatus[int]
) -> None:
    await serve(app, shutdown_trigger=stop.wait, task_status=task_status, **options)


async def threads_settle(limit: int, seconds: float = 5.0) -> int:
    """Wait (bounded) until at most `limit` threads are alive; the count then."""
    with anyio.move_on_after(seconds):
        # Threads end with no event to wait on: polling is the only way to see it.
        while threading.active_count() > limit:  # noqa: ASYNC110
            await anyio.sleep(0.05)
    return threading.active_count()


# --- a server in a subprocess ------------------------------------------------------------------


class ServerProcess:
    """A server subprocess whose stderr is read all along, line by line, into `output`.

    Reading all along matters: a server writing to a full pipe blocks, and with it
    whatever wrote (an event loop, a worker thread).
    """

    def __init__(self, process: Process) -> None:
        self.process = process
        self.output: list[str] = []
        self.ended = anyio.Event()
        self._new_line = anyio.Event()

    async def read_stderr(self) -> None:
        assert self.process.stderr is not None
        buffer = b""
        try:
            async for chunk in self.process.stderr:
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                self.output.extend(line.decode(errors="replace") for line in lines)
                self._new_line.set()
                self._new_line = anyio.Event()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        finally:
            if buffer:
                self.output.append(buffer.decode(errors="replace"))
            self.ended.set()
            self._new_line.set()

    def matching(self, pattern: str) -> list[re.Match[str]]:
        return [m for line in self.output if (m := re.search(pattern, line))]

    async def wait_for(self, pattern: str, limit: float = PROCESS_LIMIT) -> re.Match[str]:
        """Wait until a line (already read or to come) matches `pattern`."""
        await self.count(pattern, 1, limit)
        return self.matching(pattern)[0]

    async def count(self, pattern: str, times: int, limit: float = PROCESS_LIMIT) -> None:
        """Wait until `times` lines in all matched `pattern`."""
        with anyio.fail_after(limit):
            while len(self.matching(pattern)) < times:
                if self.ended.is_set():
                    raise EOFError(f"no {pattern!r}; the server exited:\n{self.text()}")
                await self._new_line.wait()

    async def exit_code(self, limit: float = PROCESS_LIMIT) -> int:
        """Wait for the exit status and the end of stderr."""
        with anyio.fail_after(limit):
            code = await self.process.wait()
            await self.ended.wait()
            return code

    def text(self) -> str:
        return "\n".join(self.output)


@asynccontextmanager
async def server_process(command: Sequence[str]) -> AsyncIterator[ServerProcess]:
    """Start `command` (cwd: this folder); killed on the way out if still running."""
    async with await anyio.open_process([sys.executable, *command], cwd=HERE) as process:
        server = ServerProcess(process)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(server.read_stderr)
                yield server
                group.cancel_scope.cancel()
        finally:
            if process.returncode is None:
                process.kill()
                with anyio.move_on_after(PROCESS_LIMIT), anyio.CancelScope(shield=True):
                    await process.wait()


def asgi_bg_command(*args: str, backend: str = "asyncio") -> list[str]:
    """`python -m asgi_bg reliability_apps:app` on a free port, plus `args`."""
    return [
        "-m",
        "asgi_bg",
        "reliability_apps:app",
        "--port",
        "0",
        "--app-dir",
        str(HERE),
        "--backend",
        backend,
        "--no-access-log",
        *args,
    ]


def uvicorn_command(*args: str) -> list[str]:
    """uvicorn with its h11 protocol and the asyncio loop, on a free port."""
    return [
        "-m",
        "uvicorn",
        "reliability_apps:app",
        "--port",
        "0",
        "--http",
        "h11",
        "--loop",
        "asyncio",
        "--no-access-log",
        "--app-dir",
        str(HERE),
        *args,
    ]


SERVING = r"(?:serving on|running on) http://127\.0\.0\.1:(\d+)"


async def started_port(server: ServerProcess) -> int:
    return int((await server.wait_for(SERVING)).group(1))


def stats_line(server: ServerProcess) -> dict[str, Any]:
    """The `STATS {json}` the app prints at the end of lifespan shutdown."""
    for line in server.output:
        if line.startswith("STATS "):
            parsed: dict[str, Any] = json.loads(line[len("STATS ") :])
            return parsed
    raise AssertionError("no STATS line:\n" + server.text())
