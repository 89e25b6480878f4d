"""The contract between the app and a task backend, and the registry of task functions.

A function decorated with ``@app.task`` is *registered*: it has a stable name
(``module:qualname``), its calls are checked when ``add_task`` is called (the function
must import back from its name, the arguments must survive a JSON round trip), and a
backend may run it in another process or after a restart. Unregistered functions always
run in-process, after the response, exactly as without a backend.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import anyio
import anyio.to_thread

from .._concurrency import is_async_callable
from ..uploads import UploadFile

# The attribute ``@app.task`` sets on a registered function: its registered name.
TASK_NAME_ATTR = "__asgi_bg_task__"


@dataclass(frozen=True, slots=True)
class TaskCall:
    """One call of a registered function, as it is journaled or published (JSON-safe)."""

    name: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The call as a JSON document."""
        return json.dumps({"name": self.name, "args": self.args, "kwargs": self.kwargs})

    @classmethod
    def from_json(cls, text: str) -> TaskCall:
        """Read a call written by ``to_json``."""
        data = json.loads(text)
        return cls(data["name"], list(data["args"]), dict(data["kwargs"]))


class TaskBackendUnavailable(Exception):
    """The backend could not journal or publish a request's calls in time.

    The app answers 503 with a JSON ``detail`` and ``Retry-After``; the request's
    in-process tasks are discarded like those of any failed handler.
    """


@runtime_checkable
class TaskBackend(Protocol):
    """Where registered calls go. ``App(task_backend=...)`` picks one when the app is built.

    ``submit`` must make the calls durable (journaled, published) before it returns: the
    app awaits it before ``http.response.start``, under ``App(task_submit_timeout=...)``.
    It must never block the event loop: a blocking client runs in a worker thread.
    """

    name: str

    async def start(self, registry: Mapping[str, Callable[..., Any]]) -> None:
        """Called at lifespan startup with every registered function, by name."""

    async def submit(self, calls: Sequence[TaskCall]) -> None:
        """Journal or publish ``calls``; raise if they could not be made durable."""

    async def stop(self) -> None:
        """Called at lifespan shutdown, after in-process tasks drained."""

    def stats(self) -> dict[str, int]:
        """The backend's own counts (submitted, failed submissions, ...)."""


def task_name(func: Callable[..., Any]) -> str:
    """The registered name of ``func``: ``module:qualname``."""
    return f"{func.__module__}:{func.__qualname__}"


def resolve_task(name: str) -> Callable[..., Any]:
    """Import ``module:qualname`` back; raises ``LookupError`` if it is not a function there."""
    module_name, _, qualname = name.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise LookupError(f"{name} cannot be imported back: {exc}") from exc
    return target  # type: ignore[no-any-return]


def check_call(
    func: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]
) -> TaskCall:
    """Validate a call of a registered function; raises ``TypeError`` naming what is wrong."""
    name = getattr(func, TASK_NAME_ATTR)
    try:
        found = resolve_task(name)
    except LookupError as exc:
        raise TypeError(f"registered task {name}: {exc}") from None
    if getattr(found, TASK_NAME_ATTR, None) != name:
        raise TypeError(f"registered task {name}: that name imports a different object")
    for label, value in [
        *((f"argument {i}", v) for i, v in enumerate(args)),
        *((f"argument {k!r}", v) for k, v in kwargs.items()),
    ]:
        _refuse_upload(name, label, value)
        _check_json(name, label, value)
    return TaskCall(name, list(args), dict(kwargs))


def _refuse_upload(name: str, label: str, value: Any) -> None:
    # An upload is closed when its request's work ends, and a backend may run the call
    # elsewhere or later: only a saved copy's path can travel.
    if isinstance(value, UploadFile):
        raise TypeError(
            f"registered task {name}: {label} is an UploadFile, which is closed when its "
            "request ends; save it (for example with shutil.copyfileobj(upload.file, f)) "
            "and pass the path"
        )


def _check_json(name: str, label: str, value: Any) -> None:
    try:
        same = json.loads(json.dumps(value, allow_nan=False)) == value
    except (TypeError, ValueError):
        same = False
    if not same or not _json_types_kept(value):
        raise TypeError(
            f"registered task {name}: {label} ({type(value).__name__}) does not survive a "
            "JSON round trip unchanged; pass str, int, float, bool, None, lists and dicts"
        )


def _json_types_kept(value: Any) -> bool:
    # ``==`` alone lets a tuple pass as a list; the worker would get a different type.
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_types_kept(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_json_types_kept(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool)


async def run_registered(
    registry: Mapping[str, Callable[..., Any]],
    call: TaskCall,
    *,
    limiter: Any = None,
) -> None:
    """Run one call on the worker side: only registered functions can be called.

    ``async def`` functions are awaited; ``def`` functions run in a worker thread
    (under ``limiter`` when given). Raises ``LookupError`` for an unknown name.
    """
    func = registry.get(call.name)
    if func is None:
        raise LookupError(f"{call.name} is not a registered task of this app")
    if is_async_callable(func):
        await func(*call.args, **call.kwargs)
    else:
        await anyio.to_thread.run_sync(
            functools.partial(func, *call.args, **call.kwargs), limiter=limiter
        )


def refuse_below_one(**counts: int) -> None:
    """Raise ``ValueError`` naming every thread or concurrency count below 1."""
    low = [name for name, count in counts.items() if count < 1]
    if low:
        raise ValueError(f"{', '.join(low)} must be >= 1")


async def submit_in_thread(
    counts: dict[str, int],
    calls: Sequence[TaskCall],
    write: Callable[[list[str]], object],
    limiter: anyio.CapacityLimiter,
) -> None:
    """Hand ``calls``, as JSON documents, to the blocking ``write`` in a worker thread;
    count them in ``counts`` as ``submitted``, or ``submit_failed`` if it raised.

    Abandoned on cancel: a request past its deadline gets its 503 at once while the
    thread ends at its own timeout. A write that lands after all the same makes the
    calls run anyway: at-least-once, as a retry would.
    """
    documents = [call.to_json() for call in calls]
    try:
        await anyio.to_thread.run_sync(write, documents, limiter=limiter, abandon_on_cancel=True)
    except BaseException:
        counts["submit_failed"] += len(calls)
        raise
    counts["submitted"] += len(calls)
