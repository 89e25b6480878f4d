"""The embedded server against uvicorn in `--http h11` mode, on the same raw ASGI app.

    python -m benchmarks.http_server [--seconds 4] [--rounds 3] [--connections 50]

Both servers run at once as child processes (plain asyncio loop, no access log, each
on its own port); every round loads one, then the other, in alternating order, with
wrk when installed (else the built-in client of `benchmarks.loadgen`). Two loads:
throughput with `--connections` keep-alive connections, and latency over a single
connection. The ratios printed are asgi_bg / uvicorn per round, then their median:
rounds interleave so background noise on the machine hits both servers alike.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks import loadgen
from benchmarks.workload import Endpoint, Receive, Scope, Send

ROOT = Path(__file__).resolve().parent.parent
APP = "benchmarks.http_server:app"
_BODY = b"Hello, World!"
_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", str(len(_BODY)).encode())]
_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 30.0
HELLO = Endpoint("hello", "/", "GET", "/", "", "text", _BODY.decode(), 0)

_COMMON = ("--host", "127.0.0.1", "--no-access-log", "--log-level", "warning")
SERVERS: dict[str, tuple[str, ...]] = {
    # `--loop asyncio`: the default, auto, would pick uvloop when it is installed.
    "asgi_bg": (sys.executable, "-m", "asgi_bg", APP, *_COMMON, "--loop", "asyncio"),
    "uvicorn-h11": (
        *(sys.executable, "-m", "uvicorn", APP, *_COMMON),
        *("--http", "h11", "--loop", "asyncio", "--lifespan", "off"),
    ),
}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The smallest complete answer, so the servers' own cost dominates."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})


@dataclass(frozen=True, slots=True)
class Sample:
    server: str
    load: str
    rps: float
    p50_ms: float
    p99_ms: float


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_ready(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{process.args!r} did not start listening on {port}")


@contextmanager
def _serving(argv: tuple[str, ...]) -> Iterator[int]:
    port = _free_port()
    process = subprocess.Popen([*argv, "--port", str(port)], cwd=ROOT)
    try:
        _wait_ready(process, port)
        yield port
    finally:
        process.terminate()  # SIGTERM: both shut down gracefully
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(_STOP_TIMEOUT)


def _measure(name: str, port: int, load: str, seconds: int, connections: int) -> Sample:
    result = loadgen.run_load(port, HELLO, seconds, connections)
    if result.status_errors or result.socket_errors:
        raise RuntimeError(
            f"{name}: {result.status_errors} bad answers, {result.socket_errors} errors"
        )
    return Sample(name, load, result.rps, result.p50_ms, result.p99_ms)


def run(seconds: int, rounds: int, connections: int) -> list[Sample]:
    """All samples, servers alternating first and second from round to round."""
    samples: list[Sample] = []
    loads = {"throughput": connections, "latency": 1}
    with ExitStack() as stack:
        ports = {name: stack.enter_context(_serving(argv)) for name, argv in SERVERS.items()}
        for round_ in range(rounds):
            order = list(ports) if round_ % 2 == 0 else list(reversed(ports))
            for load, conns in loads.items():
                for name in order:
                    samples.append(_measure(name, ports[name], load, seconds, conns))
    return samples


def _ratios(samples: list[Sample], load: str, field: str) -> list[float]:
    ours = [getattr(s, field) for s in samples if s.server == "asgi_bg" and s.load == load]
    theirs = [getattr(s, field) for s in samples if s.server != "asgi_bg" and s.load == load]
    return [a / b for a, b in zip(ours, theirs, strict=True)]


def report(samples: list[Sample]) -> str:
    """A table of every sample, then the median ratios."""
    lines = [f"{'server':<12} {'load':<11} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}"]
    lines += [
        f"{s.server:<12} {s.load:<11} {s.rps:>9.0f} {s.p50_ms:>8.2f} {s.p99_ms:>8.2f}"
        for s in samples
    ]
    for load, field, meaning in (
        ("throughput", "rps", "throughput, higher is better"),
        ("latency", "p50_ms", "median latency on one connection, lower is better"),
        ("throughput", "p99_ms", "p99 latency under load, lower is better"),
    ):
        ratios = _ratios(samples, load, field)
        each = ", ".join(f"{r:.2f}" for r in ratios)
        lines.append(
            f"asgi_bg / uvicorn-h11 {meaning}: median {statistics.median(ratios):.2f} ({each})"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()
    print(f"load generator: {loadgen.tool()}")
    print(report(run(args.seconds, args.rounds, args.connections)))


if __name__ == "__main__":
    main()
