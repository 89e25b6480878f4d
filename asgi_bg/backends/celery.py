"""The distributed backend: registered calls published to Celery (Redis or RabbitMQ).

One Celery task, ``asgi_bg.run``, carries every call as a ``TaskCall`` JSON document;
the worker runs it only if its name is in the app's registry, so nothing else
importable can be called through the broker. The task is declared with
``acks_late=True`` and ``reject_on_worker_lost=True``: a message is acknowledged after
the call ran, and a worker that dies mid-task leaves it to another worker (Redis: after
the visibility timeout, which must be longer than the longest task; RabbitMQ: as soon
as the worker's connection drops, and its ``consumer_timeout`` must be longer than the
longest task). On RabbitMQ a publish waits for the broker's confirm.

Publishing is a blocking kombu call: it runs in a worker thread under the backend's own
small limiter, with socket and connect timeouts, so a hung broker costs the request its
``task_submit_timeout`` (503), never the event loop.

The worker::

    # yourproject/worker.py
    from asgi_bg.backends.celery import worker_app
    from yourproject.main import app as web_app   # the asgi_bg App, tasks registered

    celery = worker_app(web_app)

    $ celery -A yourproject.worker:celery worker --pool solo -Q asgi_bg

Install with ``pip install "asgi_bg[celery]"``.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import anyio
import anyio.to_thread
from celery import Celery

from .base import TaskCall, refuse_below_one, run_registered, submit_in_thread

__all__ = ["CeleryBackend", "worker_app"]

logger = logging.getLogger("asgi_bg.backends.celery")

TASK_NAME: Final = "asgi_bg.run"


def _transport_options(
    visibility_timeout: float, socket_timeout: float, connect_timeout: float
) -> dict[str, Any]:
    """The broker settings at-least-once needs, under each transport's own names (each
    transport ignores the other's keys)."""
    return {
        # Redis, SQS: an unacknowledged message goes back to the queue after this long.
        "visibility_timeout": visibility_timeout,
        # Redis: socket timeouts.
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        # RabbitMQ (py-amqp): wait for the broker's publisher confirm, so a publish that
        # returned is on the broker, not in a socket buffer; and bounded socket waits.
        "confirm_publish": True,
        "read_timeout": socket_timeout,
        "write_timeout": socket_timeout,
    }


class CeleryBackend:
    """Publish registered calls to Celery; a Celery worker runs them.

    Args:
        celery_app: the Celery app (its broker URL and settings). The backend registers
            its one task on it and, unless ``configure=False``, completes the broker
            transport options (user settings win): ``visibility_timeout``,
            ``socket_timeout``, ``socket_connect_timeout`` (Redis); ``confirm_publish``,
            ``read_timeout``, ``write_timeout`` (RabbitMQ).
        queue: the Celery queue the calls go to (the worker's ``-Q``).
        visibility_timeout: seconds (Redis, SQS) before an unacknowledged message is
            given to another worker: longer than the longest task, or a slow task runs
            twice.
        socket_timeout: seconds a broker socket operation may take.
        connect_timeout: seconds a broker connection may take to open.
        publish_threads: worker threads that publish (their own limiter).
        publish_retries: times a failed publish is retried at once (a stale pooled
            connection fails the first try); the app's deadline bounds it all.
        worker_backend: the anyio backend the worker runs ``async def`` tasks on.
    """

    name = "celery"

    def __init__(
        self,
        celery_app: Celery,
        queue: str = "asgi_bg",
        *,
        visibility_timeout: float = 3600.0,
        socket_timeout: float = 5.0,
        connect_timeout: float = 2.0,
        publish_threads: int = 4,
        publish_retries: int = 1,
        worker_backend: str = "asyncio",
        configure: bool = True,
    ) -> None:
        refuse_below_one(publish_threads=publish_threads)
        self.celery_app = celery_app
        self.queue = queue
        self.worker_backend = worker_backend
        self._publish_threads = publish_threads
        self._retry_policy = {
            "max_retries": publish_retries,
            "interval_start": 0,
            "interval_step": 0.1,
            "interval_max": 0.2,
        }
        if configure:
            conf = celery_app.conf
            # The user's own transport options win over ours.
            ours = _transport_options(visibility_timeout, socket_timeout, connect_timeout)
            conf.broker_transport_options = {**ours, **(conf.broker_transport_options or {})}
            conf.broker_connection_timeout = connect_timeout
        self._registry: Mapping[str, Callable[..., Any]] | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        self._lock = threading.Lock()
        self._publishing = 0
        self._counts = dict.fromkeys(("submitted", "submit_failed"), 0)
        self._worker_counts = dict.fromkeys(("succeeded", "failed", "refused"), 0)
        self.task = self._register_task()

    def _register_task(self) -> Any:
        def run(call_json: str) -> None:
            self.run_call(call_json)

        # acks_late: the message is acknowledged once the call ran, so a worker killed
        # mid-task does not lose it; reject_on_worker_lost: a pool child that dies is
        # requeued rather than acknowledged. JSON only: never pickle from the broker.
        return self.celery_app.task(
            name=TASK_NAME,
            acks_late=True,
            reject_on_worker_lost=True,
            ignore_result=True,
            serializer="json",
            shared=False,  # this app's task, not one for every Celery app of the process
        )(run)

    # --- the app side -----------------------------------------------------------------------

    async def start(self, registry: Mapping[str, Callable[..., Any]]) -> None:
        """Nothing to open: the producer pool connects on the first publish."""
        self._registry = registry
        self._limiter = anyio.CapacityLimiter(self._publish_threads)

    async def submit(self, calls: Sequence[TaskCall]) -> None:
        """Publish one message per call; returns once the broker took them all."""
        if not calls:
            return
        if self._limiter is None:
            raise RuntimeError("the celery backend is not started (lifespan startup)")
        await submit_in_thread(self._counts, calls, self._publish, self._limiter)

    def _publish(self, documents: list[str]) -> None:
        with self._lock:
            self._publishing += 1
        try:
            with self.celery_app.producer_or_acquire() as producer:
                for document in documents:
                    self.celery_app.send_task(
                        TASK_NAME,
                        args=[document],
                        queue=self.queue,
                        producer=producer,
                        serializer="json",
                        ignore_result=True,
                        retry=True,
                        retry_policy=self._retry_policy,
                    )
        finally:
            with self._lock:
                self._publishing -= 1

    async def stop(self) -> None:
        """Nothing to drain: every call was published before its response started."""
        self._limiter = None

    def stats(self) -> dict[str, int]:
        """``submitted`` and ``submit_failed`` calls, ``publishing`` threads at work; in a
        worker: ``succeeded``, ``failed`` and ``refused`` (unregistered) calls."""
        with self._lock:
            publishing = self._publishing
        return {**self._counts, "publishing": publishing, **self._worker_counts}

    # --- the worker side -------------------------------------------------------------------

    def bind_registry(self, registry: Mapping[str, Callable[..., Any]]) -> None:
        """Give the worker the app's registered functions (``worker_app`` does this)."""
        self._registry = registry

    def run_call(self, call_json: str) -> None:
        """In the worker: run one published call if its function is registered."""
        call = TaskCall.from_json(call_json)
        registry = self._registry
        if registry is None:
            raise RuntimeError(
                "this Celery app has no asgi_bg registry: build the worker's app with "
                "asgi_bg.backends.celery.worker_app(your_asgi_bg_app)"
            )
        if call.name not in registry:
            self._worker_counts["refused"] += 1
            logger.error("Refused %s: not a registered task of this app", call.name)
            raise LookupError(f"{call.name} is not a registered task of this app")
        try:
            anyio.run(
                functools.partial(run_registered, registry, call), backend=self.worker_backend
            )
        except Exception as exc:
            self._worker_counts["failed"] += 1
            logger.error("Celery task %s failed", call.name, exc_info=exc)
            raise
        self._worker_counts["succeeded"] += 1


def worker_app(app: Any) -> Celery:
    """The Celery app a worker runs, with ``app``'s registered functions loaded.

    ``app`` is the asgi_bg ``App`` built with ``task_backend=CeleryBackend(...)``; import
    it (with every module that registers tasks) in the worker module, then run
    ``celery -A yourproject.worker:celery worker --pool solo -Q <queue>``.
    """
    backend = getattr(app, "task_backend", None)
    if not isinstance(backend, CeleryBackend):
        raise TypeError("worker_app() needs an asgi_bg App built with a CeleryBackend")
    backend.bind_registry(app.task_registry)
    conf = backend.celery_app.conf
    # With acks_late a prefetched message waits for its worker: take one at a time.
    if "worker_prefetch_multiplier" not in conf.changes:
        conf.worker_prefetch_multiplier = 1
    if "broker_connection_retry_on_startup" not in conf.changes:
        conf.broker_connection_retry_on_startup = True
    return backend.celery_app
