"""Task backends: where ``@app.task`` functions run when one process is not enough.

``DurableBackend`` (``asgi_bg[durable]``) and ``CeleryBackend`` (``asgi_bg[celery]``) are
optional extras, imported only when first asked for, never by ``import asgi_bg``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .base import TaskBackend, TaskBackendUnavailable, TaskCall

if TYPE_CHECKING:
    from .celery import CeleryBackend
    from .durable import DurableBackend

__all__ = ["CeleryBackend", "DurableBackend", "TaskBackend", "TaskBackendUnavailable", "TaskCall"]

_LAZY = {"DurableBackend": ".durable", "CeleryBackend": ".celery"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module, __name__), name)
