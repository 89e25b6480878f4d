"""One matrix: the probe app and the seed's examples under every ASGI server, for real.

Each server runs once per module as a subprocess on a free loopback port. For each we
check that the response arrives while the slow tasks are still running (they block on the
test's signal listener until released, so this is certain, not timed), that the tasks
then run in order (``def`` ones in a worker thread), that the server keeps serving the
keep-alive connection meanwhile, and that a failing task breaks neither the server nor
the connection. A server that is not installed is skipped with the reason.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import time
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from interop_support import LIMIT, SERVERS, Served, ServerKind, free_port, serving


class Inbox:
    """An aiosmtpd handler keeping the subjects it received, for the email example."""

    def __init__(self) -> None:
        self.port = free_port()
        self.subjects: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.subjects.append(str(message_from_bytes(envelope.content)["Subject"]))
        return "250 OK"


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox | None]:
    """A local SMTP server for every server of the matrix (None when aiosmtpd is missing)."""
    if importlib.util.find_spec("aiosmtpd") is None:
        yield None
        return
    from aiosmtpd.controller import Controller  # noqa: PLC0415

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture(scope="module", params=SERVERS, ids=[s.name for s in SERVERS])
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    inbox: Inbox | None,
) -> Iterator[Served]:
    kind: ServerKind = request.param
    if (reason := kind.missing()) is not None:
        pytest.skip(reason)
    smtp = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(inbox.port if inbox else 0)}
    with serving(kind, tmp_path_factory.mktemp(kind.name), env=smtp) as server:
        yield server


def read_json(conn: Any) -> tuple[int, Any]:
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def wait_returned(served: Served, conn: Any, path: str) -> None:
    """Until the ASGI call for ``path`` returned (so its tasks are done), on ``conn``."""
    conn.request("GET", f"/returned?path={quote(path)}")
    assert read_json(conn) == (200, {"returned": path})


def test_response_arrives_while_the_slow_tasks_run(served: Served) -> None:
    signals, token = served.signals, "order"
    conn = served.connect()
    conn.request("POST", f"/probe/{token}")
    status, body = read_json(conn)
    assert status == 200
    assert body["token"] == token

    # The whole response is in; the first task is running and blocked until we say so.
    slow_async = signals.expect("async started", token)
    assert signals.received(token) == []
    # The server keeps serving this very connection while the app's call goes on.
    conn.request("GET", "/pid")
    assert read_json(conn) == (200, {"pid": body["pid"]})
    slow_async.release()
    signals.expect("async done", token)

    slow_sync = signals.expect("sync started", token)
    assert slow_sync.data["thread"] != slow_async.data["thread"]  # a worker thread
    assert signals.received(token) == []
    slow_sync.release()
    signals.expect("sync done", token)
    for event in ("failing", "last"):
        assert signals.expect(event, token).pid == body["pid"]
    wait_returned(served, conn, f"/probe/{token}")
    conn.close()


def test_a_failing_task_breaks_neither_the_server_nor_the_connection(served: Served) -> None:
    signals, token = served.signals, "failure"
    conn = served.connect()
    conn.request("POST", f"/probe/{token}")
    assert read_json(conn)[0] == 200
    sock = conn.sock
    for started in ("async started", "sync started"):
        signals.expect(started, token).release()
    signals.expect("failing", token)
    signals.expect("last", token)  # the task after the failing one still ran

    # Second request on the same connection, after the call with the failure returned.
    wait_returned(served, conn, f"/probe/{token}")
    assert conn.sock is sock is not None  # never reconnected
    conn.request("GET", "/pid")
    assert read_json(conn)[0] == 200
    conn.close()
    assert served.request("GET", "/pid")[0] == 200  # and new connections are served
    log = served.log()
    assert "interop_probe.failing_task" in log, log
    assert f"probe failure {token}" in log, log


EMAIL = "user@example.com"
SEED = {"message": "Message sent"}

# name -> (request path, query, expected answer, log file, expected log)
EXAMPLE_CASES: dict[str, tuple[str, str, dict[str, str], str, str]] = {
    "notification": (
        f"/send-notification/{EMAIL}",
        "",
        {"message": "Notification sent in the background"},
        "log.txt",
        f"notification for {EMAIL}: some notification",
    ),
    "annotated": (
        f"/send-notification/{EMAIL}",
        "?q=hello",
        SEED,
        "log.txt",
        f"found query: hello\nmessage to {EMAIL}\n",
    ),
    "default": (
        f"/send-notification/{EMAIL}",
        "?q=hello",
        SEED,
        "log.txt",
        f"found query: hello\nmessage to {EMAIL}\n",
    ),
    "typing_extensions": (
        f"/send-notification/{EMAIL}",
        "",
        SEED,
        "log.txt",
        f"message to {EMAIL}\n",
    ),
    "quick_start": (
        f"/log/{EMAIL}",
        "?q=hi",
        SEED,
        "log-deps.txt",
        f"found query: hi\nmessage to {EMAIL}\n",
    ),
}


@pytest.mark.parametrize("example", list(EXAMPLE_CASES))
def test_seed_example(served: Served, example: str) -> None:
    path, query, answer, log_name, expected = EXAMPLE_CASES[example]
    log_file: Path = served.examples_dir / log_name
    log_file.unlink(missing_ok=True)
    full = f"/examples/{example}{path}"
    conn = served.connect()
    conn.request("POST", full + query)
    assert read_json(conn) == (200, answer)
    wait_returned(served, conn, full)
    assert log_file.read_text() == expected
    if example == "quick_start":
        conn.request("GET", f"/examples/{example}/tasks")
        status, stats = read_json(conn)
        assert (status, stats["failed"]) == (200, 0)
        assert stats["succeeded"] >= 2
    conn.close()


def test_email_example_sends_over_smtp(served: Served, inbox: Inbox | None) -> None:
    if inbox is None:
        pytest.skip("aiosmtpd is not installed (pip install -e '.[test]')")
    subject = f"hello from {served.kind}"
    path = "/examples/email_notification/notify/me@example.com"
    conn = served.connect()
    body = json.dumps({"subject": subject, "body": "hi"}).encode()
    conn.request("POST", path, body=body, headers={"content-type": "application/json"})
    assert read_json(conn)[0] == 202
    wait_returned(served, conn, path)
    assert subject in inbox.subjects
    conn.close()


def test_slow_processing_example_accepts_an_upload_and_reports_the_job(served: Served) -> None:
    conn = served.connect()
    data = b"a file\nof two lines\n" * 1000
    body = (
        b'--X\r\nContent-Disposition: form-data; name="file"; filename="f.txt"\r\n\r\n'
        + data
        + b"\r\n--X--\r\n"
    )
    headers = {"content-type": "multipart/form-data; boundary=X"}
    conn.request("POST", "/examples/slow_processing/jobs", body=body, headers=headers)
    status, job = read_json(conn)
    assert (status, job["status"]) == (202, "queued")
    wait_returned(served, conn, "/examples/slow_processing/jobs")
    conn.request("GET", f"/examples/slow_processing{job['url']}")
    status, done = read_json(conn)
    assert (status, done["status"], done["result"]["lines"]) == (200, "done", 2000)
    conn.request("GET", "/examples/slow_processing/jobs/unknown")
    assert read_json(conn)[0] == 404
    conn.close()


def test_daphne_kills_calls_after_its_close_timeout_and_every_lost_task_is_named(
    tmp_path: Path,
) -> None:
    """Daphne cancels an ASGI call ``--application-close-timeout`` seconds (default 10) after
    the response finished, even on a live keep-alive connection. deployment.md says to raise
    it above the longest task; when it strikes, asgi_bg logs each cancelled task by name."""
    kind = next(s for s in SERVERS if s.name == "daphne")
    if (reason := kind.missing()) is not None:
        pytest.skip(reason)
    with serving(kind, tmp_path, extra=("--application-close-timeout", "1")) as served:
        conn = served.connect()
        conn.request("POST", "/probe/killed")
        assert read_json(conn)[0] == 200
        held = served.signals.expect("async started", "killed")
        assert held.conn.recv(16) == b""  # daphne cancelled the task: its connection closed
        deadline = time.monotonic() + LIMIT
        names = [f"Cancelled background task interop_probe.{t}" for t in CANCELLED]
        while not all(name in served.log() for name in names):
            assert time.monotonic() < deadline, served.log()
            time.sleep(0.05)  # a log file: nothing to wait on but time
        assert served.signals.received("killed") == []  # none of the later tasks started
        conn.close()


CANCELLED = ("slow_async_task", "slow_sync_task", "failing_task", "last_task")


# What each server does on SIGTERM with a background task running (deployment.md's table):
# "waits" for the ASGI call to return, or "cancels" it (asgi_bg then names each lost task).
ON_SIGTERM = {
    "uvicorn-h11": "waits",
    "uvicorn-httptools": "waits",
    "hypercorn-asyncio": "cancels",
    "hypercorn-trio": "cancels",
    "granian": "waits",
    "daphne": "cancels",
    "asgi_bg-asyncio": "waits",
    "asgi_bg-trio": "waits",
}


@pytest.mark.parametrize("kind", SERVERS, ids=[s.name for s in SERVERS])
def test_sigterm_while_a_task_runs(kind: ServerKind, tmp_path: Path) -> None:
    if (reason := kind.missing()) is not None:
        pytest.skip(reason)
    # hypercorn's grace before it cancels is 3 s by default; the test need not wait that long.
    extra = ("--graceful-timeout", "1") if kind.name.startswith("hypercorn") else ()
    with serving(kind, tmp_path, extra=extra) as served:
        conn = served.connect()
        conn.request("POST", "/probe/stop")
        assert read_json(conn)[0] == 200
        conn.close()
        held = served.signals.expect("async started", "stop")
        served.process.terminate()
        if ON_SIGTERM[kind.name] == "waits":
            held.release()
            served.signals.expect("sync started", "stop").release()
            served.signals.expect("last", "stop")  # every task ran to its end
        else:
            assert held.conn.recv(16) == b""  # the server cancelled the call
        # uvicorn re-raises the signal once it has shut down cleanly, hence -SIGTERM.
        assert served.process.wait(LIMIT) in (0, -signal.SIGTERM), served.log()
        log = served.log()
        if ON_SIGTERM[kind.name] == "cancels":
            for task in CANCELLED:
                assert f"Cancelled background task interop_probe.{task}" in log, log
