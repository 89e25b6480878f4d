"""Shared fixtures: every async test runs on asyncio and on trio."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

import pytest

from asgi_bg import forms

# Subprocesses the tests start (servers, workers) import asgi_bg from this checkout,
# not from wherever the package happens to be installed.
_ROOT = str(Path(__file__).resolve().parent.parent)
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (_ROOT, os.environ.get("PYTHONPATH", "")) if p
)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    # Pinned explicitly: auto-detection would pick up whatever trio happens to be
    # installed, and an old trio breaks anyio's backend.
    return str(request.param)


@pytest.fixture
def spooled(monkeypatch: pytest.MonkeyPatch) -> list[IO[bytes]]:
    """Every file the form parser creates, kept so none is closed by being collected."""
    created: list[IO[bytes]] = []
    real = forms.spooled_file

    def recording() -> IO[bytes]:
        created.append(real())
        return created[-1]

    monkeypatch.setattr(forms, "spooled_file", recording)
    return created
