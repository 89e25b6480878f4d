"""The servers the backend tests talk to: Redis and RabbitMQ (the Celery brokers),
PostgreSQL (DBOS's server database), each started on a free loopback port the first time
a test asks for it, once per test run, and stopped when the run ends. ``broker_url`` runs
a test on both brokers, ``database`` on both journals.

Test modules import these with ``from backend_fixtures import *`` (a ``conftest.py``
here would clash with ``tests/conftest.py`` for mypy). A fixture imported into several
modules is several fixtures to pytest, so the servers are kept here, per process.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from backend_support import fresh_database, postgres_server, purged, rabbitmq_server, redis_server

__all__ = [
    "broker_url",
    "database",
    "postgres_session",
    "postgres_url",
    "rabbitmq_session",
    "redis_session",
]

_started: dict[str, str] = {}
_databases = itertools.count()


def _server(config: pytest.Config, name: str, body: Callable[[], Iterator[str]]) -> str:
    """The URL of server ``name``, started on first use and stopped at the run's end."""
    if name not in _started:
        running = body()
        _started[name] = next(running)  # a missing server skips (or fails under CI)

        def stop() -> None:
            next(running, None)  # the generator's ``finally`` stops the server

        config.add_cleanup(stop)
    return _started[name]


@pytest.fixture(scope="session")
def redis_session(pytestconfig: pytest.Config) -> str:
    return _server(pytestconfig, "redis", redis_server)


@pytest.fixture(scope="session")
def rabbitmq_session(pytestconfig: pytest.Config) -> str:
    return _server(pytestconfig, "rabbitmq", rabbitmq_server)


@pytest.fixture(scope="session")
def postgres_session(pytestconfig: pytest.Config) -> str:
    return _server(pytestconfig, "postgres", postgres_server)


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_url(request: pytest.FixtureRequest) -> str:
    """An emptied broker: each test that takes it runs on Redis and on RabbitMQ."""
    server: str = request.getfixturevalue(f"{request.param}_session")
    return purged(server)


@pytest.fixture
def postgres_url(postgres_session: str) -> str:
    """A new, empty database on the run's PostgreSQL server."""
    return fresh_database(postgres_session, f"asgi_bg_test_{next(_databases)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The durable journal: a SQLite file, or a new database on PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "tasks.sqlite")
    url: str = request.getfixturevalue("postgres_url")
    return url
