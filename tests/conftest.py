"""Shared fixtures: every async test runs on asyncio and on trio."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
