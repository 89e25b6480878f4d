"""Servers in subprocesses, and the listener the probe app's tasks report to.

Nothing here sleeps to wait for something: the probe's tasks connect to ``Signals``
and block until released, servers are ready when their port answers HTTP, and every
wait is bounded.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# Far above what any step takes on a loaded 2-core machine; only turns a hang into a failure.
LIMIT = 15.0
STARTUP_LIMIT = 30.0


@dataclass
class Signal:
    """One report from a task: its JSON line, and the connection to release it on."""

    data: dict[str, Any]
    conn: socket.socket

    @property
    def event(self) -> str:
        return str(self.data["event"])

    @property
    def pid(self) -> int:
        return int(self.data["pid"])

    def release(self) -> None:
        with self.conn:
            self.conn.sendall(b"go")


class Signals:
    """A loopback listener; each connection from the probe app is one ``Signal``."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)  # so the accept loop sees ``close`` promptly
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._queue: queue.Queue[Signal] = queue.Queue()
        self._early: list[Signal] = []
        self._open: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="signals", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(LIMIT)
            self._open.append(conn)
            try:
                line = conn.makefile("rb").readline()
            except OSError:
                conn.close()
                continue
            self._queue.put(Signal(json.loads(line), conn))

    def expect(self, event: str, token: str, timeout: float = LIMIT) -> Signal:
        """The signal ``event`` of ``token``; others arriving meanwhile are kept for later."""
        for i, sig in enumerate(self._early):
            if (sig.event, sig.data["token"]) == (event, token):
                return self._early.pop(i)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                sig = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if (sig.event, sig.data["token"]) == (event, token):
                return sig
            self._early.append(sig)
        raise AssertionError(f"no {event!r} signal for {token!r} within {timeout}s")

    def received(self, token: str) -> list[str]:
        """The events of ``token`` that arrived so far and were not taken yet."""
        while True:
            try:
                self._early.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return [s.event for s in self._early if s.data["token"] == token]

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(LIMIT)
        for conn in self._open:
            conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ServerKind:
    """How to start one server on the probe app: its command and what it needs installed."""

    name: str
    command: tuple[str, ...]  # ``{port}`` and ``{app}`` are filled in
    needs: tuple[str, ...] = ()

    def missing(self) -> str | None:
        """Why this server cannot run here, or None."""
        for module in self.needs:
            if importlib.util.find_spec(module) is None:
                return f"{self.name}: {module} is not installed (pip install -e '.[test]')"
        return None

    def argv(self, app: str, port: int) -> list[str]:
        return [part.format(app=app, port=port) for part in self.command]


PY = sys.executable
UVICORN = (PY, "-m", "uvicorn", "{app}", "--host", "127.0.0.1", "--port", "{port}")
HYPERCORN = (PY, "-m", "hypercorn", "{app}", "--bind", "127.0.0.1:{port}")
GRANIAN = (PY, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", "{port}")
ASGI_BG = (PY, "-m", "asgi_bg", "{app}", "--host", "127.0.0.1", "--port", "{port}")

SERVERS = [
    ServerKind("uvicorn-h11", (*UVICORN, "--http", "h11", "--loop", "asyncio"), ("uvicorn",)),
    ServerKind(
        "uvicorn-httptools",
        (*UVICORN, "--http", "httptools", "--loop", "asyncio"),
        ("uvicorn", "httptools"),
    ),
    ServerKind("hypercorn-asyncio", (*HYPERCORN, "--worker-class", "asyncio"), ("hypercorn",)),
    ServerKind("hypercorn-trio", (*HYPERCORN, "--worker-class", "trio"), ("hypercorn", "trio")),
    ServerKind("granian", (*GRANIAN, "--workers", "1", "{app}"), ("granian",)),
    ServerKind(
        "daphne", (PY, "-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", "{app}"), ("daphne",)
    ),
    ServerKind("asgi_bg-asyncio", (*ASGI_BG, "--backend", "asyncio")),
    ServerKind("asgi_bg-trio", (*ASGI_BG, "--backend", "trio"), ("trio",)),
]


@dataclass
class Served:
    """A server subprocess serving the probe app on ``port``."""

    kind: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    signals: Signals
    examples_dir: Path
    _log: IO[bytes] = field(repr=False)

    def log(self) -> str:
        """Everything the server wrote so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=LIMIT)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """One exchange on a fresh connection."""
        conn = self.connect()
        try:
            conn.request(method, path, body=body)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to its whole process group (workers included) if it does
        not exit in time; always reaped."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(LIMIT)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(LIMIT)
        self._log.close()


def _wait_until_serving(served: Served, path: str) -> None:
    """Until an HTTP request answers: servers print readiness differently, HTTP is common."""
    deadline = time.monotonic() + STARTUP_LIMIT
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            raise AssertionError(f"{served.kind} exited:\n{served.log()}")
        try:
            served.request("GET", path)
            return
        except (OSError, http.client.HTTPException):
            time.sleep(0.05)  # the port is not open yet: nothing to wait on but time
    raise AssertionError(f"{served.kind} did not serve within {STARTUP_LIMIT}s:\n{served.log()}")


@contextmanager
def serving(
    kind: ServerKind,
    tmp: Path,
    *,
    app: str = "interop_probe:app",
    extra: tuple[str, ...] = (),
    ready_path: str = "/pid",
    env: dict[str, str] | None = None,
) -> Iterator[Served]:
    """Start ``kind`` on ``app`` on a free loopback port; always stopped on exit."""
    signals = Signals()
    examples_dir = tmp / "examples"
    examples_dir.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        INTEROP_SIGNALS=signals.address,
        ASGI_BG_EXAMPLES_DIR=str(examples_dir),
        PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")]),
        PYTHONUNBUFFERED="1",
        SLOW_PROCESSING_SECONDS="0",
        **(env or {}),
    )
    port = free_port()
    log_path = tmp / f"{kind.name}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [*kind.argv(app, port), *extra],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: workers can be killed with it
    )
    served = Served(kind.name, port, process, log_path, signals, examples_dir, log)
    try:
        _wait_until_serving(served, ready_path)
        yield served
    finally:
        served.stop()
        signals.close()
