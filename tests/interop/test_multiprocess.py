"""Several worker processes behind one port: tasks run in the worker that answered.

Background tasks live in the process whose event loop served the request; nothing is
shared between workers. To reach both workers for certain, the test first holds one
worker's whole event loop (``/hold`` blocks it until released), so the next connection
can only be accepted by the other one; then it releases the first and uses it too.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from interop_support import PY, UVICORN, Served, ServerKind, serving

WORKERS = [
    ServerKind("uvicorn --workers 2", (*UVICORN, "--workers", "2"), ("uvicorn",)),
    ServerKind(
        "gunicorn -k uvicorn_worker.UvicornWorker",
        (
            *(PY, "-m", "gunicorn", "{app}", "--bind", "127.0.0.1:{port}", "--workers", "2"),
            *("--worker-class", "uvicorn_worker.UvicornWorker"),
        ),
        ("gunicorn", "uvicorn_worker"),
    ),
]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pre-fork servers need POSIX")


@pytest.fixture(params=WORKERS, ids=["uvicorn", "gunicorn"])
def served(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Served]:
    kind: ServerKind = request.param
    if (reason := kind.missing()) is not None:
        pytest.skip(reason)
    with serving(kind, tmp_path) as server:
        yield server


def probe(served: Served, conn: Any, token: str) -> int:
    """Run the probe on ``conn``; the pid that answered, checked against its tasks' pids."""
    conn.request("POST", f"/probe/{token}")
    response = conn.getresponse()
    assert response.status == 200
    answered = int(json.loads(response.read())["pid"])
    for started in ("async started", "sync started"):
        sig = served.signals.expect(started, token)
        assert sig.pid == answered, f"{started} ran in {sig.pid}, the answer came from {answered}"
        sig.release()
    for event in ("async done", "sync done", "failing", "last"):
        assert served.signals.expect(event, token).pid == answered
    return answered


def test_tasks_run_in_the_worker_that_answered(served: Served) -> None:
    held_conn = served.connect()
    held_conn.request("GET", "/hold/first")
    held = served.signals.expect("holding", "first")  # that worker's loop is now blocked

    other_conn = served.connect()
    other = probe(served, other_conn, "other")
    assert other != held.pid  # only the other worker could accept

    held.release()
    response = held_conn.getresponse()
    assert (response.status, json.loads(response.read())) == (200, {"pid": held.pid})
    assert probe(served, held_conn, "first-again") == held.pid  # same keep-alive connection
    assert probe(served, other_conn, "other-again") == other
    for conn in (held_conn, other_conn):
        conn.close()
