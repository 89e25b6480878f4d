"""Several processes on one journal: two web processes with distinct ``executor_id``s on one
database (PostgreSQL, and one SQLite file), one SIGKILLed while it holds accepted work;
the work runs once that executor restarted (DBOS's recovery puts it back in the queue,
and a live process takes it), each call finished once."""

from __future__ import annotations

from pathlib import Path

from backend_fixtures import *  # noqa: F403 - the shared server fixtures
from backend_support import app_server, journal, journal_statuses, read, wait_until

SEED_LOG = "found query: hello\nmessage to foo@example.com\n"


def lines_starting(log: str, prefix: str) -> list[str]:
    """The pids on the log lines that start with ``prefix``."""
    return [line.split()[-1] for line in log.splitlines() if line.startswith(prefix)]


def test_two_executors_one_journal_a_killed_one_recovers_its_work(
    tmp_path: Path, database: str
) -> None:
    env = {
        "ASGI_BG_TEST_BACKEND": "durable",
        "ASGI_BG_TEST_DB": database,
        "ASGI_BG_EXAMPLES_DIR": str(tmp_path),
    }
    env_a = {**env, "ASGI_BG_TEST_EXECUTOR": "web-a"}
    env_b = {**env, "ASGI_BG_TEST_EXECUTOR": "web-b"}
    log = tmp_path / "log.txt"
    with app_server(env_a, tmp_path / "a1.out") as first_a:
        # Alone on the journal, A dequeues its own work: `a` is PENDING on web-a.
        assert first_a.post("/slow/a")[0] == 200
        wait_until(lambda: "started a" in read(log), what="A to start its task")
        with app_server(env_b, tmp_path / "b.out") as web_b:
            # A answers the seed request, then dies: its calls have run, wait in the
            # queue (B may take them) or are PENDING on web-a (A's restart runs them).
            status, body = first_a.post("/send-notification/foo@example.com?q=hello")
            assert (status, body) == (200, '{"message":"Message sent"}')
            first_a.kill()
            assert web_b.post("/slow/b")[0] == 200
            (tmp_path / "go-a").touch()
            (tmp_path / "go-b").touch()
            wait_until(lambda: "done b" in read(log), what="B to run its task")
            # B never takes over A's workflow: it recovers its own executor's work only.
            assert ("PENDING", "web-a") in journal(database, "status, executor_id")

            with app_server(env_a, tmp_path / "a2.out") as second_a:
                wait_until(lambda: "done a" in read(log), what="`a` to run after A restarted")
                wait_until(
                    lambda: set(journal_statuses(database)) == {"SUCCESS"},
                    what="every workflow to finish",
                )
                assert second_a.terminate() == 0
            assert web_b.terminate() == 0

    text = read(log)
    first_pid, b_pid = str(first_a.process.pid), str(web_b.process.pid)
    # A's restart puts its unfinished work back in the queue: a live process runs it,
    # A's new process or B, from the call that had not finished.
    [again] = lines_starting(text, "done a")
    assert again in {str(second_a.process.pid), b_pid}
    assert lines_starting(text, "started a") == [first_pid, again]
    assert lines_starting(text, "done b") == [b_pid]
    # Each seed call finished once, whichever process ran it.
    seed = [line for line in text.splitlines() if not line.startswith(("started", "done"))]
    assert sorted(seed) == sorted(SEED_LOG.splitlines())
    assert len(journal_statuses(database)) == 3
