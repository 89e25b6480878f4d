"""Shared fixtures: every async test runs on asyncio and on trio."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    # Pinned explicitly: auto-detection would pick up whatever trio happens to be
    # installed, and an old trio breaks anyio's backend.
    return str(request.param)
