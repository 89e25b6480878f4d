"""The real-world examples, tested as shipped: email over SMTP, and slow upload processing.

The interop matrix (tests/interop) serves both under every server too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message as EmailMessage
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from aiosmtpd.controller import Controller

from asgi_bg import App
from asgi_bg._types import Message
from asgi_bg.testing import AsyncTestClient, TestClient
from examples import email_notification, slow_processing

LIMIT = 10.0  # far above what any step takes; only turns a hang into a failure


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Inbox:
    """An aiosmtpd handler keeping what it received (from the server's own thread)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.recipients.append(list(envelope.rcpt_tos))
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """A local SMTP server on a free loopback port; the example is pointed at it."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(port))
    monkeypatch.setenv("SMTP_SENDER", "app@example.com")
    try:
        yield inbox
    finally:
        controller.stop()


async def call(
    app: App,
    method: str,
    path: str,
    body: bytes,
    on_send: Any,
    content_type: bytes = b"application/json",
) -> None:
    """One ASGI call; ``on_send(message)`` sees each message the app sends."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            await anyio.sleep_forever()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        on_send(message)

    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"",
        "headers": headers,
        "root_path": "",
    }
    with anyio.fail_after(LIMIT):
        await app(scope, receive, send)


@pytest.mark.anyio
async def test_the_mail_arrives_after_the_whole_response(inbox: Inbox) -> None:
    seen: list[tuple[str, int]] = []
    body = b'{"subject": "Welcome", "body": "Hello there"}'

    def on_send(message: Message) -> None:
        seen.append((message["type"], len(inbox.messages)))

    await call(email_notification.app, "POST", "/notify/new@example.com", body, on_send)

    assert seen == [("http.response.start", 0), ("http.response.body", 0)]
    assert inbox.recipients == [["new@example.com"]]
    mail = inbox.messages[0]
    assert (mail["From"], mail["To"], mail["Subject"]) == (
        "app@example.com",
        "new@example.com",
        "Welcome",
    )
    assert str(mail.get_payload()).strip() == "Hello there"


def test_the_mail_goes_out_through_the_test_client(inbox: Inbox, anyio_backend: str) -> None:
    client = TestClient(email_notification.app, backend=anyio_backend)
    before = client.get("/tasks").json()["succeeded"]

    response = client.post("/notify/a@example.com", json={"subject": "S", "body": "B"})

    assert response.status_code == 202
    assert response.json() == {"message": "Notification to a@example.com will be sent"}
    assert [m["Subject"] for m in inbox.messages] == ["S"]  # the call returned after the task
    assert client.get("/tasks").json()["succeeded"] == before + 1


def test_an_unreachable_mail_server_is_logged_and_counted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(free_port()))  # nobody listens there
    client = TestClient(email_notification.app, raise_server_exceptions=False)
    before = client.get("/tasks").json()["failed"]

    with caplog.at_level(logging.ERROR, logger="asgi_bg.background"):
        response = client.post("/notify/b@example.com", json={"subject": "S", "body": "B"})

    assert response.status_code == 202  # the client was answered before the failure
    assert client.get("/tasks").json()["failed"] == before + 1
    expected = "Background task examples.email_notification.send_email of POST /notify/"
    assert expected in caplog.text
    assert "ConnectionRefusedError" in caplog.text


def test_a_bad_notification_is_refused_before_any_task() -> None:
    client = TestClient(email_notification.app)
    response = client.post("/notify/c@example.com", json={"subject": "no body"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:2] == ["body", "body"]


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, threading.Event]]:
    """Replace the example's slow step: it says it started, then waits to be released."""
    entered, release = threading.Event(), threading.Event()

    def step() -> None:
        entered.set()
        assert release.wait(LIMIT)

    monkeypatch.setattr(slow_processing, "expensive_step", step)
    try:
        yield entered, release
    finally:
        release.set()  # never leave a worker thread waiting


@pytest.mark.anyio
async def test_upload_answers_202_at_once_and_the_job_can_be_polled(
    gate: tuple[threading.Event, threading.Event],
) -> None:
    entered, release = gate
    app = slow_processing.app
    client = AsyncTestClient(app)
    answered = anyio.Event()
    messages: list[Message] = []

    def on_send(message: Message) -> None:
        messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    data = b"one two\nthree\n"
    upload = httpx.Request("POST", "http://testserver/jobs", files={"file": ("f.txt", data)})
    content, content_type = upload.read(), upload.headers["content-type"].encode()
    async with anyio.create_task_group() as group:
        group.start_soon(call, app, "POST", "/jobs", content, on_send, content_type)
        with anyio.fail_after(LIMIT):
            await answered.wait()
        start, body = messages
        assert start["status"] == 202
        job = slow_processing.JOBS[_json(body)["id"]]
        location = dict(start["headers"])[b"location"].decode()
        assert location == f"/jobs/{job.id}" == _json(body)["url"]
        assert _json(body)["status"] == "queued"

        assert await anyio.to_thread.run_sync(entered.wait, LIMIT)
        polled = await client.get(location)
        assert (polled.status_code, polled.json()["status"]) == (200, "processing")
        assert polled.json()["result"] is None
        release.set()

    done = (await client.get(location)).json()
    assert done["status"] == "done"
    assert done["result"] == {
        "bytes": len(data),
        "lines": 2,
        "words": 3,
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def _json(message: Message) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(message["body"])
    return result


def test_unknown_jobs_answer_404() -> None:
    response = TestClient(slow_processing.app).get("/jobs/does-not-exist")
    assert (response.status_code, response.json()) == (404, {"detail": "No job does-not-exist"})


def test_an_empty_upload_is_refused() -> None:
    response = TestClient(slow_processing.app).post("/jobs", files={"file": ("f", b"")})
    assert response.status_code == 422


def test_a_file_that_cannot_be_processed_fails_its_job(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SLOW_PROCESSING_SECONDS", "0")
    client = TestClient(slow_processing.app, raise_server_exceptions=False)

    with caplog.at_level(logging.ERROR, logger="asgi_bg.background"):
        response = client.post("/jobs", files={"file": ("f", b"\xff\xfe not utf-8")})

    assert response.status_code == 202
    job = client.get(response.json()["url"]).json()
    assert job["status"] == "failed"
    assert job["error"].startswith("UnicodeDecodeError")
    assert "Background task examples.slow_processing.process of POST /jobs failed" in caplog.text


def test_the_default_slow_step_takes_the_configured_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOW_PROCESSING_SECONDS", "0")
    client = TestClient(slow_processing.app)
    job = client.get(client.post("/jobs", files={"file": ("f", b"x")}).json()["url"]).json()
    assert (job["status"], job["result"]["words"]) == ("done", 1)
