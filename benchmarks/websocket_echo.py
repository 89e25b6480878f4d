"""WebSocket echo messages per second: the embedded server against uvicorn's two
WebSocket implementations (wsproto and websockets), on the same raw ASGI echo app.

    python -m benchmarks.websocket_echo [--seconds 3] [--rounds 3] [--connections 10]

The three servers run at once as child processes (plain asyncio loop, no access log);
every round loads each in turn, in a rotating order, so noise on the machine hits them
alike. The load is `--connections` clients of the `websockets` library, each sending a
small text message and waiting for its echo, again and again, for `--seconds`. The
ratios printed are asgi_bg / each uvicorn variant per round, then their median.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from contextlib import ExitStack

from benchmarks.http_server import _serving
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


async def _client(port: int, deadline: float) -> int:
    from websockets.asyncio.client import connect  # noqa: PLC0415

    echoed = 0
    async with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
        while time.monotonic() < deadline:
            await ws.send(_MESSAGE)
            await ws.recv()
            echoed += 1
    return echoed


async def _load(port: int, seconds: float, connections: int) -> float:
    start = time.monotonic()
    counts = await asyncio.gather(*(_client(port, start + seconds) for _ in range(connections)))
    return sum(counts) / (time.monotonic() - start)


def run(seconds: float, rounds: int, connections: int) -> dict[str, list[float]]:
    """Messages per second of each server, one value per round."""
    rates: dict[str, list[float]] = {name: [] for name in SERVERS}
    with ExitStack() as stack:
        ports = {name: stack.enter_context(_serving(argv)) for name, argv in SERVERS.items()}
        names = list(ports)
        for round_ in range(rounds):
            for name in names[round_ % 3 :] + names[: round_ % 3]:
                rates[name].append(asyncio.run(_load(ports[name], seconds, connections)))
    return rates


def report(rates: dict[str, list[float]]) -> str:
    """Each server's rates, then asgi_bg's median ratio to each uvicorn variant."""
    lines = [
        f"{name:<20} " + " ".join(f"{rate:>8.0f}" for rate in values) + "  msg/s"
        for name, values in rates.items()
    ]
    ours = rates["asgi_bg"]
    for name, theirs in rates.items():
        if name == "asgi_bg":
            continue
        ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
        each = ", ".join(f"{r:.2f}" for r in ratios)
        lines.append(
            f"asgi_bg / {name}: median {statistics.median(ratios):.2f} ({each}), higher is better"
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
