"""The seed's examples, tested as shipped in ``examples/``."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest

from asgi_bg import App
from asgi_bg._types import Message
from asgi_bg.testing import TestClient

DEPENDENCY_EXAMPLES = [
    "examples.dependency_annotated",
    "examples.dependency_typing_extensions",
    "examples.dependency_default",
]


@pytest.fixture
def log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ASGI_BG_EXAMPLES_DIR", str(tmp_path))
    return tmp_path


def example(name: str) -> ModuleType:
    return importlib.import_module(name)


async def call_recording(app: App, method: str, path: str, query: bytes = b"") -> list[Any]:
    """Drive the app directly, noting for each message whether the log file existed."""
    events: list[Any] = []
    log = anyio.Path(importlib.import_module("examples._paths").log_path())

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        events.append((message["type"], message.get("more_body", False), await log.exists()))

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": [],
        "root_path": "",
    }
    await app(scope, receive, send)
    events.append(("returned", False, await log.exists()))
    return events


def test_notification_is_written(log_dir: Path, anyio_backend: str) -> None:
    client = TestClient(example("examples.background_notification").app, backend=anyio_backend)

    response = client.post("/send-notification/foo@example.com")

    assert response.status_code == 200
    assert response.json() == {"message": "Notification sent in the background"}
    expected = "notification for foo@example.com: some notification"
    assert (log_dir / "log.txt").read_text() == expected


@pytest.mark.anyio
async def test_notification_is_written_after_the_whole_response(log_dir: Path) -> None:
    app = example("examples.background_notification").app

    events = await call_recording(app, "POST", "/send-notification/foo@example.com")

    assert events == [
        ("http.response.start", False, False),
        ("http.response.body", False, False),
        ("returned", False, True),
    ]


def test_notification_defaults_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ASGI_BG_EXAMPLES_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    client = TestClient(example("examples.background_notification").app)

    client.post("/send-notification/bar@example.com")

    expected = "notification for bar@example.com: some notification"
    assert (tmp_path / "log.txt").read_text() == expected


@pytest.mark.parametrize("module", DEPENDENCY_EXAMPLES)
def test_dependency_example_with_query(log_dir: Path, module: str, anyio_backend: str) -> None:
    client = TestClient(example(module).app, backend=anyio_backend)

    response = client.post("/send-notification/foo@example.com?q=hello")

    assert response.status_code == 200
    assert response.json() == {"message": "Message sent"}
    assert (log_dir / "log.txt").read_text() == "found query: hello\nmessage to foo@example.com\n"


@pytest.mark.parametrize("module", DEPENDENCY_EXAMPLES)
def test_dependency_example_without_query(log_dir: Path, module: str, anyio_backend: str) -> None:
    client = TestClient(example(module).app, backend=anyio_backend)

    response = client.post("/send-notification/foo@example.com")

    assert response.status_code == 200
    assert (log_dir / "log.txt").read_text() == "message to foo@example.com\n"


@pytest.mark.anyio
@pytest.mark.parametrize("module", DEPENDENCY_EXAMPLES)
async def test_dependency_example_writes_after_the_response(log_dir: Path, module: str) -> None:
    events = await call_recording(example(module).app, "POST", "/send-notification/x", b"q=hi")

    assert [e[2] for e in events] == [False, False, True]
    assert (log_dir / "log.txt").read_text() == "found query: hi\nmessage to x\n"


def test_quick_start_app_serves_both_examples_and_counts_tasks(log_dir: Path) -> None:
    app = example("examples.app").app
    client = TestClient(app)
    before = client.get("/tasks").json()["succeeded"]

    client.post("/send-notification/a@example.com")
    client.post("/log/b@example.com?q=hi")

    assert (log_dir / "log.txt").read_text() == "notification for a@example.com: some notification"
    assert (log_dir / "log-deps.txt").read_text() == "found query: hi\nmessage to b@example.com\n"
    assert client.get("/tasks").json()["succeeded"] == before + 3
