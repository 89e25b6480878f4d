"""The same apps over real sockets on 127.0.0.1: uvicorn (h11, httptools) and our server.

Each (server, contender) pair runs in its own process, started fresh for every round;
rounds rotate the order. After each load the run polls the app's task counters until
every queued task ran: *effective throughput* = answered requests / (load time + that
wait), because background tasks queue up behind the responses.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from benchmarks.contenders import module_of, rotated
from benchmarks.loadgen import run_load
from benchmarks.workload import (
    ENDPOINTS_BY_KEY,
    STATS_PATH,
    BenchmarkError,
    Endpoint,
    check_content,
)

ROOT = Path(__file__).resolve().parent.parent
_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 15.0
_DRAIN_TIMEOUT = 120.0
_POLL_INTERVAL = 0.005


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    label: str
    argv: tuple[str, ...]  # "{app}" and "{port}" are filled in


_UVICORN = (sys.executable, "-m", "uvicorn", "{app}", "--host", "127.0.0.1", "--port", "{port}")
# Same loop everywhere: plain asyncio, no uvloop, no access log.
_QUIET = ("--no-access-log", "--log-level", "warning")
_UVICORN_FLAGS = ("--loop", "asyncio", "--lifespan", "on", *_QUIET)
SERVERS = (
    Server("uvicorn-h11", "uvicorn --http h11", (*_UVICORN, *_UVICORN_FLAGS, "--http", "h11")),
    Server(
        "uvicorn-httptools",
        "uvicorn --http httptools",
        (*_UVICORN, *_UVICORN_FLAGS, "--http", "httptools"),
    ),
    Server(
        "asgi_bg",
        "asgi_bg embedded server",
        (
            sys.executable,
            "-m",
            "asgi_bg",
            "{app}",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--loop",
            "asyncio",  # the default, auto, would pick uvloop when installed
            *_QUIET,
        ),
    ),
)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def available_servers() -> tuple[list[Server], dict[str, str]]:
    """The servers this machine can run, and why the others are skipped."""
    needs = {"uvicorn-h11": "h11", "uvicorn-httptools": "httptools", "asgi_bg": "asgi_bg.__main__"}
    usable = [server for server in SERVERS if _importable(needs[server.name])]
    skipped = {s.name: f"{needs[s.name]} not importable" for s in SERVERS if s not in usable}
    return usable, skipped


@dataclass(frozen=True, slots=True)
class HttpSettings:
    rounds: int
    seconds: int
    connections: int
    endpoints: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HttpRecord:
    round: int
    server: str
    contender: str
    endpoint: str
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    drain_s: float
    effective_rps: float
    socket_errors: int


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _get(port: int, target: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _task_counts(port: int) -> dict[str, int]:
    status, body = _get(port, STATS_PATH)
    if status != 200:
        raise BenchmarkError(f"{STATS_PATH} answered {status}")
    counts: dict[str, int] = json.loads(body)
    return counts


def _wait_ready(process: subprocess.Popen[bytes], port: int, log: IO[bytes]) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            _task_counts(port)
            return
        except OSError:
            time.sleep(0.05)
    log.seek(0)
    raise BenchmarkError(f"server did not start: {log.read().decode(errors='replace')[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(_STOP_TIMEOUT)


@contextmanager
def serving(server: Server, contender: str) -> Iterator[int]:
    """Run ``contender``'s app under ``server`` in a child process; yields its port."""
    port = _free_port()
    fill = {"{app}": f"{module_of(contender)}:app", "{port}": str(port)}
    argv = [fill.get(part, part) for part in server.argv]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            _wait_ready(process, port, log)
            yield port
        finally:
            _stop(process)


def _wait_for_tasks(port: int) -> float:
    """Seconds until every task the app queued has run."""
    started = time.perf_counter()
    while True:
        counts = _task_counts(port)
        waited = time.perf_counter() - started
        if counts["queued"] == counts["done"]:
            return waited
        if waited > _DRAIN_TIMEOUT:
            raise BenchmarkError(f"tasks still pending after {_DRAIN_TIMEOUT} s: {counts}")
        time.sleep(_POLL_INTERVAL)


def _check_answer(port: int, endpoint: Endpoint) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(endpoint.method, endpoint.target)
        response = connection.getresponse()
        status, body = response.status, response.read()
    finally:
        connection.close()
    if status != 200:
        raise BenchmarkError(f"{endpoint.label} answered {status} over HTTP")
    check_content(endpoint, body)


def _measure(port: int, endpoint: Endpoint, seconds: int, connections: int) -> HttpRecord:
    """Load one endpoint; the record's round, server and contender are filled by the caller."""
    _check_answer(port, endpoint)
    _wait_for_tasks(port)
    load = run_load(port, endpoint, seconds, connections)
    drain = _wait_for_tasks(port)
    if load.status_errors:
        raise BenchmarkError(f"{endpoint.label}: {load.status_errors} answers were not 200")
    return HttpRecord(
        round=0,
        server="",
        contender="",
        endpoint=endpoint.key,
        requests=load.requests,
        duration_s=load.duration_s,
        rps=load.rps,
        p50_ms=load.p50_ms,
        p90_ms=load.p90_ms,
        p99_ms=load.p99_ms,
        drain_s=drain,
        effective_rps=load.requests / (load.duration_s + drain),
        socket_errors=load.socket_errors,
    )


Pair = tuple[Server, str]  # a server kind and the contender app it serves


def _start_all(
    pairs: list[Pair], stack: ExitStack, failures: list[str], progress: Callable[[str], None]
) -> dict[Pair, int]:
    """Start every pair's process; idle ones cost nothing while another is under load."""
    ports = {}
    for server, contender in pairs:
        try:
            ports[server, contender] = stack.enter_context(serving(server, contender))
        except BenchmarkError as exc:
            failures.append(f"{server.name}, {contender}: {exc}")
            progress(f"{server.name} {contender}: FAILED to start: {exc}")
    return ports


def _load_endpoint(
    ports: dict[Pair, int],
    key: str,
    settings: HttpSettings,
    number: int,
    shift: int,
    failures: list[str],
) -> list[HttpRecord]:
    """One round of one endpoint over every live pair, in rotated order.

    A pair that fails (a wrong answer, tasks that never finish) is reported and dropped, and
    the run goes on: one broken server must not throw away the other measurements.
    """
    records = []
    for server, contender in rotated(list(ports), shift):
        port = ports[server, contender]
        try:
            record = _measure(port, ENDPOINTS_BY_KEY[key], settings.seconds, settings.connections)
        except BenchmarkError as exc:
            failures.append(f"round {number}, {server.name}, {contender}, {key}: {exc}")
            del ports[server, contender]
            continue
        records.append(replace(record, round=number, server=server.name, contender=contender))
    return records


def run(
    servers: list[Server],
    contenders: list[str],
    settings: HttpSettings,
    progress: Callable[[str], None],
) -> tuple[list[HttpRecord], list[str]]:
    """Every round, every endpoint, every (server, contender) pair; also what failed.

    All pairs run side by side for the whole run, so the loads of one endpoint follow each
    other within seconds and the per-round ratios compare like with like.
    """
    records: list[HttpRecord] = []
    failures: list[str] = []
    with ExitStack() as stack:
        ports = _start_all([(s, c) for s in servers for c in contenders], stack, failures, progress)
        for number in range(1, settings.rounds + 1):
            for offset, key in enumerate(settings.endpoints):
                batch = _load_endpoint(ports, key, settings, number, number + offset, failures)
                records.extend(batch)
                rates = ", ".join(f"{r.server}/{r.contender} {r.rps:.0f}" for r in batch)
                progress(f"http round {number}/{settings.rounds} {key} req/s: {rates}")
    return records, failures
