"""Which contenders exist, and loading them: a framework that is not importable is skipped."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

from benchmarks.workload import ASGIApp

# Order matters only for display; the references of the ratios come first.
NAMES = ("raw", "asgi_bg", "starlette", "fastapi")
LABELS = {"raw": "raw ASGI", "asgi_bg": "asgi_bg", "starlette": "Starlette", "fastapi": "FastAPI"}
REFERENCES = ("raw", "starlette", "fastapi")

_T = TypeVar("_T")


def rotated(items: Sequence[_T], shift: int) -> list[_T]:
    """``items`` starting at ``shift``: interleaving, so that each round and endpoint starts
    with a different contender and a slow phase of the machine does not always hit the same.
    """
    if not items:
        return []
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def module_of(name: str) -> str:
    """The module whose ``app`` attribute is the contender: what servers are given."""
    return "benchmarks.apps.raw" if name == "raw" else f"benchmarks.apps.{name}_app"


@dataclass(frozen=True, slots=True)
class Contender:
    name: str
    app: ASGIApp
    # Awaits tasks still running after the ASGI call returned, when the framework can
    # defer them (asgi_bg's ``app.tasks.join``); None when tasks end inside the call.
    settle: Callable[[], Awaitable[None]] | None


def load(name: str) -> Contender:
    app = importlib.import_module(module_of(name)).app
    join = getattr(getattr(app, "tasks", None), "join", None)
    return Contender(name, cast(ASGIApp, app), cast("Callable[[], Awaitable[None]] | None", join))


def load_available(names: tuple[str, ...]) -> tuple[list[Contender], dict[str, str]]:
    """Load every named contender; one whose framework cannot be imported is skipped, with why."""
    loaded: list[Contender] = []
    skipped: dict[str, str] = {}
    for name in names:
        try:
            loaded.append(load(name))
        except ImportError as exc:
            skipped[name] = f"not importable: {exc}"
    return loaded, skipped
