"""Crash tests in subprocesses, on the seed example with ``@app.task`` on ``write_log``.

Durable, on a SQLite file and on PostgreSQL: the app is SIGKILLed after its 2xx and
before the task ran, or in the middle of the task; the next start runs it. Celery, on
Redis and on RabbitMQ: a worker is SIGKILLed mid-task; another worker runs it
(``acks_late``; on Redis a short visibility timeout).
"""

from __future__ import annotations

from pathlib import Path

from backend_fixtures import *  # noqa: F403 - the shared server fixtures
from backend_support import app_server, celery_worker, journal_statuses, read, wait_until

SEED_LOG = "found query: hello\nmessage to foo@example.com\n"


def started_and_done(log: str, tag: str) -> tuple[list[str], list[str]]:
    lines = log.splitlines()
    started = [line.split()[2] for line in lines if line.startswith(f"started {tag} ")]
    done = [line.split()[2] for line in lines if line.startswith(f"done {tag} ")]
    return started, done


def durable_env(tmp_path: Path, database: str) -> dict[str, str]:
    return {
        "ASGI_BG_TEST_BACKEND": "durable",
        "ASGI_BG_TEST_DB": database,
        "ASGI_BG_EXAMPLES_DIR": str(tmp_path),
    }


def test_durable_killed_after_the_2xx_before_the_task_ran(tmp_path: Path, database: str) -> None:
    env = durable_env(tmp_path, database)
    log = tmp_path / "log.txt"
    holding = {**env, "ASGI_BG_TEST_JOURNAL_ONLY": "1"}
    with app_server(holding, tmp_path / "first.out") as server:
        status, body = server.post("/send-notification/foo@example.com?q=hello")
        assert (status, body) == (200, '{"message":"Message sent"}')
        server.kill()
    assert not log.exists()  # the task never ran ...
    assert journal_statuses(database) == ["ENQUEUED"]  # ... but is journaled

    with app_server(env, tmp_path / "second.out") as server:
        wait_until(lambda: read(log) == SEED_LOG, what="the journaled tasks to run")
        assert server.terminate() == 0
    assert journal_statuses(database) == ["SUCCESS"]


def test_durable_killed_mid_task_runs_it_again(tmp_path: Path, database: str) -> None:
    env = durable_env(tmp_path, database)
    log = tmp_path / "log.txt"
    with app_server(env, tmp_path / "first.out") as server:
        assert server.post("/slow/a")[0] == 200
        wait_until(lambda: "started a" in read(log), what="the task to start")
        first_pid = str(server.process.pid)
        server.kill()
    assert started_and_done(read(log), "a") == ([first_pid], [])
    assert journal_statuses(database) == ["PENDING"]

    (tmp_path / "go-a").touch()
    with app_server(env, tmp_path / "second.out") as server:
        wait_until(lambda: "done a" in read(log), what="the task to run again")
        second_pid = str(server.process.pid)
        assert server.terminate() == 0
    assert started_and_done(read(log), "a") == ([first_pid, second_pid], [second_pid])
    assert journal_statuses(database) == ["SUCCESS"]


def test_durable_seed_example_on_trio(tmp_path: Path, database: str) -> None:
    env = durable_env(tmp_path, database)
    log = tmp_path / "log.txt"
    with app_server(env, tmp_path / "app.out", backend="trio") as server:
        status, _ = server.post("/send-notification/foo@example.com?q=hello")
        assert status == 200
        wait_until(lambda: read(log) == SEED_LOG, what="the tasks to run")
        assert server.terminate() == 0


def test_celery_worker_killed_mid_task_another_worker_runs_it(
    tmp_path: Path, broker_url: str
) -> None:
    env = {
        "ASGI_BG_TEST_BACKEND": "celery",
        "ASGI_BG_TEST_BROKER_URL": broker_url,
        "ASGI_BG_TEST_VISIBILITY": "2",
        "ASGI_BG_EXAMPLES_DIR": str(tmp_path),
    }
    log = tmp_path / "log.txt"
    with app_server(env, tmp_path / "app.out") as server:
        # The seed example, through the broker.
        with celery_worker(env, tmp_path / "w1.out", "w1") as first:
            status, _ = server.post("/send-notification/foo@example.com?q=hello")
            assert status == 200
            wait_until(lambda: read(log) == SEED_LOG, what="the worker to run the seed tasks")

            assert server.post("/slow/b")[0] == 200
            wait_until(lambda: "started b" in read(log), what="the task to start")
            first.kill()
        first_pid = str(first.process.pid)
        assert started_and_done(read(log), "b") == ([first_pid], [])

        (tmp_path / "go-b").touch()
        with celery_worker(env, tmp_path / "w2.out", "w2") as second:
            wait_until(lambda: "done b" in read(log), what="another worker to run it")
            second_pid = str(second.process.pid)
        assert started_and_done(read(log), "b") == ([first_pid, second_pid], [second_pid])
        assert server.terminate() == 0
