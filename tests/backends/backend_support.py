"""Helpers of the task backend tests: bounded waits; Redis, RabbitMQ and PostgreSQL servers
of the test's own on free loopback ports (a missing server skips the test, or fails it
under ``CI=true``); app and Celery worker subprocesses (killed on the way out); a broker
that accepts and never answers."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import anyio
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


async def until(predicate: Callable[[], bool], limit: float = LIMIT) -> None:
    """``wait_until`` on the event loop: polls without blocking it."""
    with anyio.fail_after(limit):
        while True:
            if predicate():
                return
            await anyio.sleep(0.005)


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def missing_service(what: str, package: str) -> NoReturn:
    """Skip the test loudly, or fail it under ``CI=true``, where ``.ci/run`` provides it."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is not available; .ci/run installs {package}")
    pytest.skip(f"SKIPPED, NOT TESTED: {what} is not available (apt-get install {package})")


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


# --- Redis ------------------------------------------------------------------------------------


def redis_server() -> Iterator[str]:
    """Start ``redis-server`` on a free loopback port, yield its URL, kill it (a fixture body)."""
    binary = shutil.which("redis-server")
    if binary is None:
        missing_service("redis-server", "redis-server")
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


# --- RabbitMQ ---------------------------------------------------------------------------------

RABBITMQ = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # Debian's, without the su wrapper


def rabbitmq_server() -> Iterator[str]:
    """Start a RabbitMQ node of its own (own name, ports and directory), yield its AMQP URL,
    kill it (a fixture body). Erlang's boot takes a few seconds: use it per module."""
    binary = RABBITMQ if os.path.exists(RABBITMQ) else shutil.which("rabbitmq-server")
    if binary is None:
        missing_service("rabbitmq-server", "rabbitmq-server")
    port, dist_port = free_port(), free_port()
    workdir = Path(tempfile.mkdtemp(prefix="asgi_bg-rabbitmq-"))
    (workdir / "enabled_plugins").write_text("[].\n")
    env = {
        **os.environ,
        "HOME": str(workdir),  # its Erlang cookie goes here
        "RABBITMQ_NODENAME": f"asgi_bg_{port}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_MNESIA_BASE": str(workdir / "mnesia"),
        "RABBITMQ_LOG_BASE": str(workdir / "log"),
        "RABBITMQ_LOGS": "-",
        "RABBITMQ_CONFIG_FILE": str(workdir / "rabbitmq"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins"),
        "RABBITMQ_PID_FILE": str(workdir / "pid"),
    }
    output = workdir / "server.out"
    with output.open("wb") as sink:
        # Its own process group: the script starts the Erlang VM as a child, and both go.
        # Run in its directory: a node that crashes writes its dump to the working one.
        process = subprocess.Popen(
            [binary],
            cwd=workdir,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        started = Child(process, output)
        started.wait_for(r"Server startup complete", 60.0)
        wait_until(lambda: port_open(port), 10.0, "RabbitMQ to listen")
        yield f"amqp://guest:guest@127.0.0.1:{port}//"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10.0)
        shutil.rmtree(workdir, ignore_errors=True)


def purged(url: str, queue: str = "asgi_bg") -> str:
    """``url``'s broker with ``queue`` emptied (Redis or AMQP)."""
    if url.startswith("redis://"):
        return emptied(url)
    from celery import Celery  # noqa: PLC0415 - only with the celery extra

    with Celery("purge", broker=url).connection_for_write() as connection:
        connection.ensure_connection(max_retries=3)
        with contextlib.suppress(Exception):  # not declared yet: nothing to purge
            connection.default_channel.queue_purge(queue)
    return url


# --- PostgreSQL -------------------------------------------------------------------------------


def postgres_bindir() -> Path | None:
    """Where ``initdb`` and ``postgres`` are: Debian keeps them off ``PATH``."""
    found = shutil.which("pg_ctl")
    if found is not None:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=_version)
    return Path(versions[-1]).parent if versions else None


def _version(path: str) -> int:
    digits = Path(path).parent.parent.name
    return int(digits) if digits.isdigit() else 0


def postgres_server() -> Iterator[str]:
    """Start a PostgreSQL cluster of its own (``initdb`` in a temporary directory, a free
    loopback port, trust authentication), yield a URL, stop it (a fixture body).

    PostgreSQL refuses to run as root: as root, the cluster belongs to ``postgres``.
    """
    bindir = postgres_bindir()
    if bindir is None:
        missing_service("PostgreSQL", "postgresql")
    as_user: dict[str, Any] = {}
    workdir = Path(tempfile.mkdtemp(prefix="asgi_bg-postgres-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(workdir, owner.pw_uid, owner.pw_gid)
        as_user = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
    data, port = workdir / "data", free_port()
    initdb = [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
    subprocess.run([*initdb, "-E", "UTF8", "--no-sync"], check=True, capture_output=True, **as_user)
    server = [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(workdir)]
    server += ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"]
    process = subprocess.Popen(
        server, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **as_user
    )
    try:
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        wait_until(lambda: _postgres_ready(url), 30.0, "PostgreSQL to accept connections")
        yield url
    finally:
        process.send_signal(signal.SIGINT)  # fast shutdown
        try:
            process.wait(20.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10.0)
        shutil.rmtree(workdir, ignore_errors=True)


def _postgres_ready(url: str) -> bool:
    import psycopg  # noqa: PLC0415 - DBOS's driver, installed with the durable extra

    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:  # not listening yet, or "starting up"
        return False
    return True


def fresh_database(server_url: str, name: str) -> str:
    """A new, empty database ``name`` on ``server_url``'s server; its URL."""
    import psycopg  # noqa: PLC0415 - DBOS's driver, installed with the durable extra

    with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        db.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name


def journal(database: str, columns: str = "status") -> list[tuple[Any, ...]]:
    """Rows of DBOS's ``workflow_status`` (oldest first) in a SQLite file or a PostgreSQL URL."""
    query = f"SELECT {columns} FROM {{table}} ORDER BY created_at"
    if database.startswith("postgresql://"):
        import psycopg  # noqa: PLC0415 - DBOS's driver

        with psycopg.connect(database) as db:
            return list(db.execute(query.format(table="dbos.workflow_status")).fetchall())
    with sqlite3.connect(database) as lite:
        return list(lite.execute(query.format(table="workflow_status")).fetchall())


def journal_statuses(database: str) -> list[str]:
    """The status of every workflow in the journal."""
    return [row[0] for row in journal(database)]


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
