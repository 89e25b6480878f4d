"""CeleryBackend against real brokers (Redis and RabbitMQ) and a real worker (solo pool,
in a subprocess): the seed example through the broker, only registered names run,
failures logged by function name; a broker that is down or hung gets the request a 503
at its deadline while the loop keeps serving, on asyncio and trio."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import bg_seed_app
import pytest
from backend_fixtures import *  # noqa: F403 - the shared server fixtures
from backend_support import celery_worker, free_port, hung_listener, read, until, wait_until
from celery import Celery

from asgi_bg import App, BackgroundTasks
from asgi_bg.backends import TaskCall
from asgi_bg.backends.celery import TASK_NAME, CeleryBackend, worker_app
from asgi_bg.testing import AsyncTestClient, TestResponse

DONE: list[str] = []


def record(message: str) -> None:
    DONE.append(f"def {message}")


async def record_async(message: str) -> None:
    await anyio.lowlevel.checkpoint()
    DONE.append(f"async {message}")


def explode(message: str) -> None:
    raise ValueError(f"boom {message}")


REGISTRY: dict[str, Callable[..., Any]] = {
    "record": record,
    "record_async": record_async,
    "explode": explode,
}


@pytest.fixture(autouse=True)
def _clean() -> None:
    DONE.clear()


def backend_for(broker: str, **options: Any) -> CeleryBackend:
    return CeleryBackend(Celery("tests", broker=broker), **options)


def seed_app(backend: CeleryBackend, **options: Any) -> App:
    """The seed route plus a plain one, on ``backend``."""
    app = App(task_backend=backend, **options)
    app.task(bg_seed_app.write_log)

    @app.post("/send-notification/{email}")
    async def send_notification(email: str, background_tasks: BackgroundTasks) -> dict[str, str]:
        background_tasks.add_task(bg_seed_app.write_log, f"message to {email}\n")
        return {"message": "Message sent"}

    @app.get("/plain")
    async def plain() -> dict[str, bool]:
        return {"ok": True}

    return app


# --- the worker side, without a broker ----------------------------------------------------------


def test_worker_runs_registered_calls_only(caplog: pytest.LogCaptureFixture) -> None:
    backend = backend_for("redis://127.0.0.1:1/0")
    backend.bind_registry(REGISTRY)
    backend.run_call(TaskCall("record", ["a"]).to_json())
    backend.run_call(TaskCall("record_async", ["b"]).to_json())
    with caplog.at_level(logging.ERROR, "asgi_bg.backends.celery"):
        with pytest.raises(LookupError, match="os:system is not a registered task"):
            backend.run_call(TaskCall("os:system", ["echo pwned"]).to_json())
        with pytest.raises(ValueError, match="boom c"):
            backend.run_call(TaskCall("explode", ["c"]).to_json())
    assert DONE == ["def a", "async b"]
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "Refused os:system: not a registered task of this app",
        "Celery task explode failed",
    ]
    stats = backend.stats()
    assert (stats["succeeded"], stats["failed"], stats["refused"]) == (2, 1, 1)


def test_the_task_is_late_acked_json_only() -> None:
    backend = backend_for("redis://127.0.0.1:1/0", visibility_timeout=60.0)
    task = backend.celery_app.tasks[TASK_NAME]
    assert (task.acks_late, task.reject_on_worker_lost, task.serializer) == (True, True, "json")
    options = backend.celery_app.conf.broker_transport_options
    assert options["visibility_timeout"] == 60.0
    assert options["socket_timeout"] == 5.0
    assert options["socket_connect_timeout"] == 2.0
    # RabbitMQ: a publish returns once the broker confirmed it; its socket waits are bounded.
    assert options["confirm_publish"] is True
    assert (options["read_timeout"], options["write_timeout"]) == (5.0, 5.0)


def test_user_transport_options_win() -> None:
    celery_app = Celery("tests", broker="redis://127.0.0.1:1/0")
    celery_app.conf.broker_transport_options = {"visibility_timeout": 7200}
    CeleryBackend(celery_app, visibility_timeout=60.0)
    options = celery_app.conf.broker_transport_options
    assert (options["visibility_timeout"], options["socket_timeout"]) == (7200, 5.0)


def test_no_publish_threads_is_refused_when_built() -> None:
    with pytest.raises(ValueError, match=r"^publish_threads must be >= 1$"):
        backend_for("redis://127.0.0.1:1/0", publish_threads=0)


def test_worker_app_needs_a_celery_backend() -> None:
    with pytest.raises(TypeError, match="CeleryBackend"):
        worker_app(App())
    backend = backend_for("redis://127.0.0.1:1/0")
    with pytest.raises(RuntimeError, match="worker_app"):
        backend.run_call(TaskCall("record", ["x"]).to_json())
    app = App(task_backend=backend)
    celery_app = worker_app(app)
    assert celery_app is backend.celery_app
    assert celery_app.conf.worker_prefetch_multiplier == 1


# --- through a broker and a worker ---------------------------------------------------------------


@pytest.mark.anyio
async def test_the_seed_example_through_a_worker(
    anyio_backend: str, tmp_path: Path, broker_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASGI_BG_EXAMPLES_DIR", str(tmp_path))
    env = {
        "ASGI_BG_TEST_BACKEND": "celery",
        "ASGI_BG_TEST_BROKER_URL": broker_url,
        "ASGI_BG_EXAMPLES_DIR": str(tmp_path),
    }
    backend = backend_for(broker_url)
    app = seed_app(backend)
    with celery_worker(env, tmp_path / "worker.out", "seed") as worker:
        async with AsyncTestClient(app) as client:
            response = await client.post("/send-notification/foo@example.com")
            assert response.json() == {"message": "Message sent"}
            # A name the worker's registry lacks, published past add_task's checks.
            await backend.submit([TaskCall("os:system", ["echo pwned"])])
        assert backend.stats()["submitted"] == 2
        log = tmp_path / "log.txt"
        await anyio.to_thread.run_sync(
            lambda: wait_until(lambda: read(log) == "message to foo@example.com\n")
        )
        await anyio.to_thread.run_sync(
            lambda: worker.wait_for("Refused os:system: not a registered task of this app")
        )
    assert read(log) == "message to foo@example.com\n"


# What a broker URL looks like on each transport, for a port with no broker behind it.
BROKER_URLS = {
    "redis": "redis://127.0.0.1:{port}/0",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:{port}//",
}
# The 503 must come from the request's deadline, not from the broker client giving up:
# its timeouts are set far longer. The bound on the 503 is generous (a loaded machine
# delays it) yet well below those timeouts.
SOCKET_TIMEOUT = 15.0
SLACK = 5.0


async def answer_while_broker_stalls(app: App, backend: CeleryBackend) -> dict[str, Any]:
    """POST the seed route; once its publish is under way, GET /plain. Both are timed and
    their answers noted, in order, on one log."""
    timings: dict[str, Any] = {"answered": []}

    async def timed(name: str, call: Callable[[], Any]) -> None:
        started = time.monotonic()
        response: TestResponse = await call()
        timings[name] = time.monotonic() - started
        timings[f"{name} response"] = response
        timings["answered"].append(name)

    async with AsyncTestClient(app) as client:
        with anyio.fail_after(SOCKET_TIMEOUT):
            async with anyio.create_task_group() as group:
                group.start_soon(timed, "work", lambda: client.post("/send-notification/x"))
                # Under way, or already failed (a refused connection fails at once).
                await until(lambda: bool(backend.stats()["publishing"] or timings["answered"]))
                group.start_soon(timed, "plain", lambda: client.get("/plain"))
    return timings


def assert_503_in_time(timings: dict[str, Any], deadline: float) -> None:
    work: TestResponse = timings["work response"]
    assert work.status_code == 503
    assert "did not accept the tasks in time" in work.json()["detail"]
    assert "retry-after" in work.headers
    assert timings["work"] < deadline + SLACK
    assert timings["plain response"].status_code == 200


@pytest.mark.anyio
@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
async def test_broker_down_answers_503(anyio_backend: str, broker: str) -> None:
    url = BROKER_URLS[broker].format(port=free_port())
    backend = backend_for(url, socket_timeout=SOCKET_TIMEOUT, connect_timeout=SOCKET_TIMEOUT)
    app = seed_app(backend, task_submit_timeout=1.0)
    timings = await answer_while_broker_stalls(app, backend)
    assert_503_in_time(timings, 1.0)  # a refused connection may fail it sooner
    assert backend.stats()["submit_failed"] == 1


@pytest.mark.anyio
@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
async def test_hung_broker_answers_503_at_the_deadline(anyio_backend: str, broker: str) -> None:
    with hung_listener() as port:
        url = BROKER_URLS[broker].format(port=port)
        backend = backend_for(url, socket_timeout=SOCKET_TIMEOUT, connect_timeout=SOCKET_TIMEOUT)
        app = seed_app(backend, task_submit_timeout=0.5)
        timings = await answer_while_broker_stalls(app, backend)
        assert_503_in_time(timings, 0.5)
        assert timings["work"] >= 0.5  # nothing failed it sooner: the deadline did
        # The plain request, sent while the publish hung, was answered before the 503.
        assert timings["answered"] == ["plain", "work"]
        assert backend.stats()["submit_failed"] == 1
        assert backend.stats()["publishing"] == 1  # abandoned, ends with its socket
    # The listener is closed: the abandoned publish fails and its thread ends.
    await anyio.to_thread.run_sync(
        lambda: wait_until(lambda: backend.stats()["publishing"] == 0, SOCKET_TIMEOUT)
    )
