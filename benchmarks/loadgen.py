"""Load generators for the HTTP runs: wrk when installed, else a small asyncio client.

Both keep ``connections`` keep-alive connections busy on 127.0.0.1 for a bounded time
(the built-in one also stops at a request cap) and report answered requests, non-200
answers, socket errors and latency percentiles.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

from benchmarks.workload import BenchmarkError, Endpoint

_RESPONSE_TIMEOUT = 10.0
# The built-in client's cap: far above what one Python server answers per second here.
_MAX_REQUESTS_PER_SECOND = 100_000

# wrk reports through this script, as JSON on one marked line: its text output rounds.
_WRK_SCRIPT = """
wrk.method = "%(method)s"
%(body)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"status_errors\\": %%d, "
    .. "\\"socket_errors\\": %%d, \\"p50_us\\": %%d, \\"p90_us\\": %%d, \\"p99_us\\": %%d}\\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int
    duration_s: float
    status_errors: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s


def tool() -> str:
    """The load generator this machine will use."""
    return "wrk" if shutil.which("wrk") else "built-in asyncio client"


def run_load(port: int, endpoint: Endpoint, seconds: int, connections: int) -> LoadResult:
    if shutil.which("wrk"):
        return _wrk(port, endpoint, seconds, connections)
    cap = seconds * _MAX_REQUESTS_PER_SECOND
    return asyncio.run(_builtin(port, endpoint, seconds, connections, cap))


def _wrk(port: int, endpoint: Endpoint, seconds: int, connections: int) -> LoadResult:
    body = 'wrk.body = ""' if endpoint.method == "POST" else ""
    script = _WRK_SCRIPT % {"method": endpoint.method, "body": body}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "load.lua"
        path.write_text(script)
        command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
        url = f"http://127.0.0.1:{port}{endpoint.target}"
        done = subprocess.run(
            [*command, "-s", str(path), url],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
    return _parse_wrk(done.stdout)


def _parse_wrk(output: str) -> LoadResult:
    for line in output.splitlines():
        if line.startswith("WRKJSON "):
            data = json.loads(line.removeprefix("WRKJSON "))
            return LoadResult(
                requests=data["requests"],
                duration_s=data["duration_us"] / 1e6,
                status_errors=data["status_errors"],
                socket_errors=data["socket_errors"],
                p50_ms=data["p50_us"] / 1000,
                p90_ms=data["p90_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
            )
    raise BenchmarkError(f"wrk printed no result:\n{output}")


async def _read_body(reader: asyncio.StreamReader, head: bytes) -> None:
    lowered = head.lower()
    if b"transfer-encoding: chunked" in lowered:
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")
        return
    marker = lowered.find(b"content-length:")
    if marker < 0:
        raise BenchmarkError(f"response without length: {head!r}")
    end = lowered.index(b"\r\n", marker)
    await reader.readexactly(int(lowered[marker + 15 : end]))


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    async with asyncio.timeout(_RESPONSE_TIMEOUT):
        head = await reader.readuntil(b"\r\n\r\n")
        await _read_body(reader, head)
    return int(head.split(b" ", 2)[1])


class _Tally:
    def __init__(self, deadline: float, cap: int) -> None:
        self.deadline = deadline
        self.cap = cap
        self.latencies: list[float] = []
        self.status_errors = 0
        self.socket_errors = 0

    def going(self) -> bool:
        return perf_counter() < self.deadline and len(self.latencies) < self.cap


async def _connection(port: int, request: bytes, tally: _Tally) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        tally.socket_errors += 1
        return
    try:
        while tally.going():
            started = perf_counter()
            status = await _exchange(reader, writer, request)
            tally.latencies.append(perf_counter() - started)
            tally.status_errors += status != 200
    except (OSError, asyncio.IncompleteReadError, TimeoutError):
        tally.socket_errors += 1
    finally:
        writer.close()


async def _builtin(
    port: int, endpoint: Endpoint, seconds: int, connections: int, cap: int
) -> LoadResult:
    request = (
        f"{endpoint.method} {endpoint.target} HTTP/1.1\r\n"
        f"host: 127.0.0.1:{port}\r\ncontent-length: 0\r\n\r\n"
    ).encode()
    started = perf_counter()
    tally = _Tally(started + seconds, cap)
    await asyncio.gather(*(_connection(port, request, tally) for _ in range(connections)))
    duration = perf_counter() - started
    cuts = statistics.quantiles(tally.latencies, n=100) if len(tally.latencies) > 1 else [0.0] * 99
    return LoadResult(
        requests=len(tally.latencies),
        duration_s=duration,
        status_errors=tally.status_errors,
        socket_errors=tally.socket_errors,
        p50_ms=cuts[49] * 1000,
        p90_ms=cuts[89] * 1000,
        p99_ms=cuts[98] * 1000,
    )
