"""The Celery worker of ``bg_seed_app``: ``celery -A bg_worker:celery worker --pool solo``."""

from __future__ import annotations

from bg_seed_app import app as web_app

from asgi_bg.backends.celery import worker_app

celery = worker_app(web_app)
