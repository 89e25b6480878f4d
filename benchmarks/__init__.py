"""Benchmarks: asgi_bg against a hand-written ASGI callable, Starlette and FastAPI.

Run everything with ``python -m benchmarks`` (``--quick`` for a short smoke run,
``--help`` for the rest). Not collected by pytest: nothing here is named ``test_*``.
"""
