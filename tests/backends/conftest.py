"""The servers the backend tests talk to, each started once per session on free loopback
ports, only when a test asks for it: Redis and RabbitMQ (the Celery brokers), PostgreSQL
(DBOS's server database). ``broker_url`` runs a test on both brokers, ``database`` on
both journals."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from backend_support import fresh_database, postgres_server, purged, rabbitmq_server, redis_server

_databases = itertools.count()


@pytest.fixture(scope="session")
def redis_session() -> Iterator[str]:
    yield from redis_server()


@pytest.fixture(scope="session")
def rabbitmq_session() -> Iterator[str]:
    yield from rabbitmq_server()


@pytest.fixture(scope="session")
def postgres_session() -> Iterator[str]:
    yield from postgres_server()


@pytest.fixture
def redis_url(redis_session: str) -> str:
    return purged(redis_session)


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_url(request: pytest.FixtureRequest) -> str:
    """An emptied broker: each test that takes it runs on Redis and on RabbitMQ."""
    server: str = request.getfixturevalue(f"{request.param}_session")
    return purged(server)


@pytest.fixture
def postgres_url(postgres_session: str) -> str:
    """A new, empty database on the session's PostgreSQL server."""
    return fresh_database(postgres_session, f"asgi_bg_test_{next(_databases)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The durable journal: a SQLite file, or a new database on PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "tasks.sqlite")
    url: str = request.getfixturevalue("postgres_url")
    return url
