"""WebSocket echo messages per second: the embedded server against uvicorn's two
WebSocket implementations (wsproto and websockets), on the same raw ASGI echo app.

    python -m benchmarks.websocket_echo [--seconds 3] [--rounds 3] [--connections 10]

The three servers run at once as child processes (plain asyncio loop, no access log);
every round loads each in turn, in a rotating order, so noise on the machine hits them
alike. The load is `--connections` clients of the `websockets` library, each sending a
small text message and waiting for its echo, again and again, for `--seconds`. Two
figures per load: messages per second of wall time, and messages per CPU second of the
server process (from /proc; it depends much less on what else the machine is doing).
The ratios printed are asgi_bg / each uvicorn variant per round, then their median.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from benchmarks.http_server import ROOT, _free_port, _wait_ready
from benchmarks.workload import Receive, Scope, Send

APP = "benchmarks.websocket_echo:app"
_MESSAGE = "x" * 32
_COMMON = ("--host", "127.0.0.1", "--no-access-log", "--log-level", "warning")
_UVICORN = (sys.executable, "-m", "uvicorn", APP, *_COMMON, "--loop", "asyncio", "--lifespan")
SERVERS: dict[str, tuple[str, ...]] = {
    "asgi_bg": (sys.executable, "-m", "asgi_bg", APP, *_COMMON),
    "uvicorn-wsproto": (*_UVICORN, "off", "--ws", "wsproto"),
    "uvicorn-websockets": (*_UVICORN, "off", "--ws", "websockets"),
}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Accept, then send every message straight back until the client leaves."""
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": message.get("text")})


@dataclass
class Served:
    port: int
    pid: int


@dataclass
class Sample:
    wall_rate: float  # messages per second
    cpu_rate: float  # messages per CPU second of the server process


@contextmanager
def _serving(argv: tuple[str, ...]) -> Iterator[Served]:
    port = _free_port()
    process = subprocess.Popen([*argv, "--port", str(port)], cwd=ROOT)
    try:
        _wait_ready(process, port)
        yield Served(port, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _client(port: int, deadline: float) -> int:
    from websockets.asyncio.client import connect  # noqa: PLC0415

    echoed = 0
    async with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
        while time.monotonic() < deadline:
            await ws.send(_MESSAGE)
            await ws.recv()
            echoed += 1
    return echoed


async def _load(served: Served, seconds: float, connections: int) -> Sample:
    cpu_before = _cpu_seconds(served.pid)
    start = time.monotonic()
    clients = (_client(served.port, start + seconds) for _ in range(connections))
    echoed = sum(await asyncio.gather(*clients))
    wall = time.monotonic() - start
    cpu = _cpu_seconds(served.pid) - cpu_before
    return Sample(echoed / wall, echoed / max(cpu, 1e-3))


def run(seconds: float, rounds: int, connections: int) -> dict[str, list[Sample]]:
    """One sample per server and round."""
    samples: dict[str, list[Sample]] = {name: [] for name in SERVERS}
    with ExitStack() as stack:
        served = {name: stack.enter_context(_serving(argv)) for name, argv in SERVERS.items()}
        names = list(served)
        for round_ in range(rounds):
            for name in names[round_ % 3 :] + names[: round_ % 3]:
                samples[name].append(asyncio.run(_load(served[name], seconds, connections)))
    return samples


def report(samples: dict[str, list[Sample]]) -> str:
    """Each server's rates, then asgi_bg's median ratios to each uvicorn variant."""
    lines = []
    for field, unit in (("wall_rate", "msg/s"), ("cpu_rate", "msg per server CPU s")):
        lines += [
            f"{name:<20} " + " ".join(f"{getattr(s, field):>8.0f}" for s in values) + f"  {unit}"
            for name, values in samples.items()
        ]
    for name, theirs in samples.items():
        if name == "asgi_bg":
            continue
        for field, meaning in (("wall_rate", "msg/s"), ("cpu_rate", "msg per CPU second")):
            ours = [getattr(s, field) for s in samples["asgi_bg"]]
            ratios = [a / getattr(b, field) for a, b in zip(ours, theirs, strict=True)]
            each = ", ".join(f"{r:.2f}" for r in ratios)
            lines.append(
                f"asgi_bg / {name}, {meaning}: median {statistics.median(ratios):.2f} ({each})"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=10)
    args = parser.parse_args()
    print(report(run(args.seconds, args.rounds, args.connections)))


if __name__ == "__main__":
    main()
