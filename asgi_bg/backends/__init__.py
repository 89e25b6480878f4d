"""Task backends: where ``@app.task`` functions run when one process is not enough."""

from __future__ import annotations

from .base import TaskBackend, TaskBackendUnavailable, TaskCall

__all__ = ["TaskBackend", "TaskBackendUnavailable", "TaskCall"]
