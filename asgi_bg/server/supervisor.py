"""`--workers N` and `--reload`: a supervisor process and its worker processes.

The supervisor binds the listening socket once and starts each worker as
`python -m asgi_bg <the same arguments>` with the socket inherited (as `--fd`) and a
pipe on which the worker says it is ready (its lifespan startup is done). The kernel
spreads connections over the workers accepting on the shared socket. Workers run in
their own process group: a terminal's CTRL+C reaches only the supervisor, which then
sends each worker exactly one SIGTERM (a second signal would force it).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

from .config import ProcessConfig, ServerConfig
from .listeners import bind_socket, describe_socket
from .reload import start_watching
from .state import logger

_HANDOFF_ENV = "ASGI_BG_WORKER_FDS"
# A worker that exits before it is ready this many times in a row, with no worker
# becoming ready in between, means the app cannot start: the supervisor gives up.
_START_FAILURES_TO_GIVE_UP = 3
_TICK = 0.05
_PR_SET_PDEATHSIG = 1  # prctl option, from <linux/prctl.h>  # seconds between looks at the workers
# How long past the graceful shutdown timeout a worker gets before SIGKILL.
_KILL_GRACE = 5.0


@dataclass(frozen=True)
class WorkerHandoff:
    """What a worker process received from its supervisor."""

    fd: int
    ready_fd: int

    @classmethod
    def from_environment(cls) -> WorkerHandoff | None:
        # Popped, so processes the app starts do not think they are workers.
        value = os.environ.pop(_HANDOFF_ENV, None)
        if value is None:
            return None
        fd, ready_fd, supervisor = (int(part) for part in value.split(","))
        _stop_with_parent(supervisor)
        return cls(fd, ready_fd)

    def ready(self) -> None:
        os.write(self.ready_fd, b"1")
        os.close(self.ready_fd)


def _stop_with_parent(supervisor: int) -> None:
    """Linux: SIGTERM this worker when its supervisor dies, even by SIGKILL, so no
    worker goes on serving unsupervised."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor:  # it died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


class Worker:
    """One worker process and the read end of its readiness pipe."""

    def __init__(self, argv: Sequence[str], sock_fd: int) -> None:
        ready_read, ready_write = os.pipe()
        env = dict(os.environ, **{_HANDOFF_ENV: f"{sock_fd},{ready_write},{os.getpid()}"})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "asgi_bg", *argv],
            pass_fds=(sock_fd, ready_write),
            env=env,
            process_group=0,
        )
        os.close(ready_write)
        os.set_blocking(ready_read, False)
        self._ready_read = ready_read
        self.ready = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_ready(self) -> bool:
        """True the first time the worker's readiness byte is seen."""
        if self.ready:
            return False
        try:
            self.ready = os.read(self._ready_read, 1) == b"1"
        except BlockingIOError:
            return False
        return self.ready

    def close(self) -> None:
        os.close(self._ready_read)


class Supervisor:
    """Keeps `count` workers alive until a signal, then drains them all."""

    def __init__(self, argv: Sequence[str], server: ServerConfig, process: ProcessConfig) -> None:
        self._argv = argv
        self._server = server
        self._process = process
        self._sock = bind_socket(server)
        self._workers: list[Worker] = []
        self._signals = 0
        self._start_failures = 0
        self._reload = threading.Event()

    def run(self) -> int:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)
        logger.info("Started supervisor process [%d]", os.getpid())
        logger.info("asgi_bg serving on %s (Press CTRL+C to quit)", describe_socket(self._sock))
        stop_watching = self._watch_files()
        self._start_workers()
        status = self._supervise()
        stop_watching.set()
        self._stop_workers()
        self._sock.close()
        logger.info("Stopping supervisor process [%d]", os.getpid())
        return status

    def _watch_files(self) -> threading.Event:
        if not self._process.reload:
            return threading.Event()
        return start_watching(self._process, self._reload)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:  # forward the second signal: workers stop at once
            for worker in self._workers:
                _send(worker, signal.SIGTERM)

    def _start_workers(self) -> None:
        count = 1 if self._process.reload else self._process.workers
        while len(self._workers) < count:
            self._workers.append(Worker(self._argv, self._sock.fileno()))

    def _supervise(self) -> int:
        while not self._signals:
            time.sleep(_TICK)
            for worker in list(self._workers):
                if worker.check_ready():
                    self._start_failures = 0
                if worker.process.poll() is not None:
                    self._reap(worker)
            if self._start_failures >= _START_FAILURES_TO_GIVE_UP and not self._process.reload:
                logger.error("Workers keep failing at start: giving up")
                return 1
            if self._reload.is_set():
                self._reload.clear()
                self._stop_workers()
                self._start_failures = 0
            if self._start_failures == 0 or not self._process.reload:
                self._start_workers()
        return 0

    def _reap(self, worker: Worker) -> None:
        self._workers.remove(worker)
        worker.check_ready()
        worker.close()
        status = worker.process.returncode
        if not worker.ready:
            self._start_failures += 1
            what = "waiting for a file change" if self._process.reload else "retrying"
            logger.error("Worker [%d] failed at start (%s); %s", worker.pid, _status(status), what)
        elif status == 0:
            logger.info("Worker [%d] finished; starting a new one", worker.pid)
        else:
            logger.warning("Worker [%d] died (%s); starting a new one", worker.pid, _status(status))

    def _stop_workers(self) -> None:
        for worker in self._workers:
            _send(worker, signal.SIGTERM)
        deadline = time.monotonic() + self._server.shutdown_timeout + _KILL_GRACE
        for worker in self._workers:
            try:
                worker.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.error("Worker [%d] did not stop: killing it", worker.pid)
                worker.process.kill()
                worker.process.wait()
            worker.close()
        self._workers.clear()


def _send(worker: Worker, signum: int) -> None:
    if worker.process.poll() is None:
        worker.process.send_signal(signum)


def _status(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit status {returncode}"


def supervise(argv: Sequence[str], server: ServerConfig, process: ProcessConfig) -> int:
    """Run the supervisor until SIGINT/SIGTERM; the process exit status."""
    return Supervisor(argv, server, process).run()
