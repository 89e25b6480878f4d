"""Helpers of the task backend tests: bounded waits, a Redis server on a free loopback
port, app and Celery worker subprocesses (killed on the way out), a broker that accepts
and never answers."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

HERE = Path(__file__).parent
LIMIT = 20.0  # a subprocess start includes imports (DBOS, Celery); far above what it takes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], limit: float = LIMIT, what: str = "") -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit} s waiting for {what or predicate}")
        time.sleep(0.02)


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


# --- Redis ------------------------------------------------------------------------------------


def redis_server() -> Iterator[str]:
    """Start ``redis-server`` on a free loopback port, yield its URL, kill it (a fixture body).

    Fails, never skips, when ``CI=true`` and ``redis-server`` is missing.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("redis-server is not installed; .ci/run installs it")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--protected-mode", "yes"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _redis_ping(port), 10.0, "redis-server to answer PING")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait(10.0)


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def emptied(url: str) -> str:
    """``url``'s Redis, emptied."""
    client = redis.Redis.from_url(url, socket_timeout=5.0)
    try:
        client.flushall()
    finally:
        client.close()
    return url


# --- a broker that accepts and never answers ----------------------------------------------------


@contextmanager
def hung_listener() -> Iterator[int]:
    """A loopback TCP port that accepts connections and never answers; closed on exit."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.05)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(5.0)
        for conn in accepted:
            conn.close()
        server.close()


# --- subprocesses --------------------------------------------------------------------------------


class Child:
    """A subprocess whose output goes to a file; killed on the way out of ``child``."""

    def __init__(self, process: subprocess.Popen[bytes], output: Path) -> None:
        self.process = process
        self.output = output

    def text(self) -> str:
        return read(self.output)

    def wait_for(self, pattern: str, limit: float = LIMIT) -> re.Match[str]:
        found: list[re.Match[str]] = []

        def seen() -> bool:
            if match := re.search(pattern, self.text()):
                found.append(match)
                return True
            if self.process.poll() is not None:
                raise AssertionError(f"exited with {self.process.returncode}:\n{self.text()}")
            return False

        wait_until(seen, limit, repr(pattern))
        return found[0]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(LIMIT)

    def terminate(self, limit: float = LIMIT) -> int:
        """SIGTERM and wait for the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(limit)


@contextmanager
def child(command: list[str], env: dict[str, str], output: Path) -> Iterator[Child]:
    with output.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, *command],
            cwd=HERE,
            env={**os.environ, "PYTHONPATH": str(HERE.parent.parent), **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    proc = Child(process, output)
    try:
        yield proc
    finally:
        proc.kill()


class AppServer(Child):
    """``python -m asgi_bg bg_seed_app:app`` on a free port."""

    port = 0

    def post(self, path: str, limit: float = 10.0) -> tuple[int, Any]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=limit) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()


@contextmanager
def app_server(env: dict[str, str], output: Path, backend: str = "asyncio") -> Iterator[AppServer]:
    command = ["-m", "asgi_bg", "bg_seed_app:app", "--port", "0", "--app-dir", str(HERE)]
    command += ["--backend", backend, "--no-access-log", "--shutdown-timeout", "5"]
    with child(command, env, output) as proc:
        server = AppServer(proc.process, output)
        server.port = int(server.wait_for(r"serving on http://127\.0\.0\.1:(\d+)").group(1))
        yield server


@contextmanager
def celery_worker(env: dict[str, str], output: Path, name: str) -> Iterator[Child]:
    command = ["-m", "celery", "-A", "bg_worker:celery", "worker", "--pool", "solo"]
    command += ["-Q", "asgi_bg", "-n", f"{name}@%h", "--loglevel", "INFO"]
    command += ["--without-heartbeat", "--without-mingle", "--without-gossip"]
    with child(command, env, output) as proc:
        proc.wait_for(rf"{name}@\S+ ready\.")
        yield proc
