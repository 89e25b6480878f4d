"""What every contender serves: the endpoints, their expected answers and the tasks they queue.

The apps in ``benchmarks.apps`` all import their background-task functions and the task
counters from here, so a run can check that each request queued and ran exactly the
tasks it should, whichever framework served it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

EMAIL = "bench@example.com"
NOTIFICATION = "some notification"
# GET on this path answers {"queued": n, "done": n}: how the HTTP runs know every task ran.
STATS_PATH = "/__bench/tasks"


class TaskCounters:
    """Counts background tasks queued by handlers and finished by the task runner.

    Sync tasks finish on worker threads while the loop thread queues more, hence the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.queued = 0
        self.done = 0

    def queue(self, count: int) -> None:
        with self._lock:
            self.queued += count

    def finish(self) -> None:
        with self._lock:
            self.done += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"queued": self.queued, "done": self.done}


COUNTERS = TaskCounters()


# The tasks only count: writing the seed's log file would make disk I/O, not framework
# overhead, the thing measured.
def write_notification(email: str, message: str = "") -> None:
    """The seed's sync task (``def``): runs in a worker thread in every contender."""
    COUNTERS.finish()


async def notify_async(email: str, message: str = "") -> None:
    """An ``async def`` task: awaited on the event loop in every contender."""
    COUNTERS.finish()


def write_log(message: str) -> None:
    """The seed dependency example's sync task."""
    COUNTERS.finish()


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One request every contender answers identically."""

    key: str
    route: str  # as declared, for display
    method: str
    path: str
    query: str
    kind: Literal["text", "json"]
    content: object
    tasks: int

    @property
    def label(self) -> str:
        return f"{self.method} {self.route}"

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("hello", "/hello", "GET", "/hello", "", "text", "Hello, World!", 0),
    Endpoint(
        "items",
        "/items/{item_id:int}?q=",
        "GET",
        "/items/42",
        "q=bench",
        "json",
        {"item_id": 42, "q": "bench"},
        0,
    ),
    Endpoint(
        "notify",
        "/send-notification/{email}",
        "POST",
        f"/send-notification/{EMAIL}",
        "",
        "json",
        {"message": "Notification sent in the background"},
        2,
    ),
    Endpoint(
        "notify_async",
        "/send-notification-async/{email}",
        "POST",
        f"/send-notification-async/{EMAIL}",
        "",
        "json",
        {"message": "Notification sent in the background"},
        1,
    ),
    Endpoint(
        "dependency",
        "/send-notification-dep/{email}?q=",
        "POST",
        f"/send-notification-dep/{EMAIL}",
        "q=bench",
        "json",
        {"message": "Message sent"},
        2,
    ),
)
ENDPOINTS_BY_KEY = {endpoint.key: endpoint for endpoint in ENDPOINTS}


def check_content(endpoint: Endpoint, body: bytes) -> None:
    """Raise unless ``body`` is what ``endpoint`` must answer (JSON compared parsed)."""
    text = body.decode()
    got: object = json.loads(text) if endpoint.kind == "json" else text
    if got != endpoint.content:
        raise BenchmarkError(f"{endpoint.label} answered {text!r}, expected {endpoint.content!r}")


class BenchmarkError(RuntimeError):
    """A contender answered wrongly or lost tasks: its numbers would be meaningless."""
