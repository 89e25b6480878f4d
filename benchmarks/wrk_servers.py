"""The embedded server against uvicorn `--http h11` under wrk, app by app and loop by loop.

    python -m benchmarks.wrk_servers [--seconds 3] [--reps 3] [--connections 32]
                                     [--threads 1] [--pin | --no-pin]

For each app (raw ASGI, asgi_bg, Starlette; their `/hello` endpoint) and each event
loop (asyncio, uvloop), both servers run as child processes without access log; each
rep loads one then the other (the order alternates from rep to rep), first with
`--connections` keep-alive connections (throughput), then with one (latency). A ratio is
asgi_bg / uvicorn within one rep, so a slow phase of a shared machine hits both alike;
the median of the reps is the figure to quote. The server's CPU time per request under
the throughput load is printed as a ratio too: on a machine shared with other work it
varies far less than requests per second. With `--pin` (the default where `taskset`
exists) the server runs on CPU 0 and wrk on CPU 1.

wrk is required (`sh benchmarks/setup.sh` installs it where missing): the Python load
generator that `benchmarks.loadgen` falls back to needs about as much CPU per request as the
servers it measures, so on a small machine it can be the bottleneck and pull every ratio
towards 1, a likely part of why `benchmarks.http_server` and a plain wrk run disagreed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks import loadgen
from benchmarks.http_server import _free_port, _wait_ready

ROOT = Path(__file__).resolve().parent.parent
APPS = {
    "raw": "benchmarks.apps.raw:app",
    "asgi_bg": "benchmarks.apps.asgi_bg_app:app",
    "starlette": "benchmarks.apps.starlette_app:app",
}
LOOPS = ("asyncio", "uvloop")
_QUIET = ("--host", "127.0.0.1", "--no-access-log", "--log-level", "warning")
_STOP_TIMEOUT = 30.0


def server_argv(server: str, app: str, loop: str) -> list[str]:
    if server == "asgi_bg":
        return [sys.executable, "-m", "asgi_bg", app, *_QUIET, "--loop", loop]
    return [sys.executable, "-m", "uvicorn", app, *_QUIET, "--http", "h11", "--loop", loop]


@dataclass(frozen=True, slots=True)
class Settings:
    seconds: int
    reps: int
    connections: int
    threads: int
    pin: bool

    def cpu(self, which: int) -> list[str]:
        return ["taskset", "-c", str(which)] if self.pin else []


@dataclass(frozen=True, slots=True)
class Served:
    port: int
    pid: int

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server process has used (Linux /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def serving(argv: list[str], settings: Settings) -> Iterator[Served]:
    port = _free_port()
    # taskset execs the server, so the pid is the server's.
    process = subprocess.Popen([*settings.cpu(0), *argv, "--port", str(port)], cwd=ROOT)
    try:
        _wait_ready(process, port)
        yield Served(port, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wrk(port: int, connections: int, settings: Settings) -> loadgen.LoadResult:
    threads = min(settings.threads, connections)
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "report.lua"
        script.write_text(loadgen._WRK_SCRIPT % {"method": "GET", "body": ""})
        command = [*settings.cpu(1), "wrk", f"-t{threads}", f"-c{connections}"]
        command += [f"-d{settings.seconds}s", "--timeout", "10s", "-s", str(script)]
        done = subprocess.run(
            [*command, f"http://127.0.0.1:{port}/hello"],
            capture_output=True,
            text=True,
            timeout=settings.seconds + 60,
            check=True,
        )
    result = loadgen._parse_wrk(done.stdout)
    if result.status_errors or result.socket_errors:
        raise RuntimeError(f"{result.status_errors} bad answers, {result.socket_errors} errors")
    return result


@dataclass(frozen=True, slots=True)
class Rep:
    rps: dict[str, float]
    p50_ms: dict[str, float]
    # Server CPU time per request under the throughput load: what the server costs,
    # much less sensitive than req/s to other processes sharing the machine.
    cpu_us: dict[str, float]


def _throughput(served: Served, settings: Settings) -> tuple[float, float]:
    before = served.cpu_seconds()
    result = wrk(served.port, settings.connections, settings)
    used = served.cpu_seconds() - before
    return result.rps, used * 1e6 / result.requests


def measure(app: str, loop: str, settings: Settings) -> list[Rep]:
    reps = []
    with ExitStack() as stack:
        servers = {
            server: stack.enter_context(serving(server_argv(server, app, loop), settings))
            for server in ("asgi_bg", "uvicorn")
        }
        for rep in range(settings.reps):
            order = list(servers) if rep % 2 == 0 else list(reversed(servers))
            loads = {s: _throughput(servers[s], settings) for s in order}
            p50 = {s: wrk(servers[s].port, 1, settings).p50_ms for s in order}
            rps = {s: load[0] for s, load in loads.items()}
            reps.append(Rep(rps, p50, {s: load[1] for s, load in loads.items()}))
    return reps


def _ratio(reps: list[Rep], field: str) -> str:
    ratios = [getattr(r, field)["asgi_bg"] / getattr(r, field)["uvicorn"] for r in reps]
    return f"{statistics.median(ratios):.2f} ({' '.join(f'{x:.2f}' for x in ratios)})"


def describe(name: str, loop: str, reps: list[Rep]) -> str:
    ours = statistics.median(r.rps["asgi_bg"] for r in reps)
    theirs = statistics.median(r.rps["uvicorn"] for r in reps)
    return (
        f"{name:<10} {loop:<8} {ours:>8.0f} {theirs:>8.0f}   throughput {_ratio(reps, 'rps')}"
        f"   CPU/request {_ratio(reps, 'cpu_us')}   latency p50 {_ratio(reps, 'p50_ms')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--apps", default=",".join(APPS))
    parser.add_argument("--loops", default=",".join(LOOPS))
    can_pin = shutil.which("taskset") is not None
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=can_pin)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is required: sh benchmarks/setup.sh (or apt-get install wrk)")
    settings = Settings(args.seconds, args.reps, args.connections, args.threads, args.pin)
    print(
        f"wrk -t{settings.threads} -c{settings.connections} -d{settings.seconds}s "
        f"(latency: -c1), {settings.reps} reps, "
        + ("server pinned to CPU 0, wrk to CPU 1" if settings.pin else "no CPU pinning")
    )
    print(f"{'app':<10} {'loop':<8} {'asgi_bg':>8} {'uvicorn':>8}   asgi_bg / uvicorn-h11")
    for name in args.apps.split(","):
        for loop in args.loops.split(","):
            print(describe(name, loop, measure(APPS[name], loop, settings)), flush=True)


if __name__ == "__main__":
    main()
