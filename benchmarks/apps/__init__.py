"""The contenders: one module per framework, each exposing ``app`` serving the same endpoints.

Every module is importable on its own (``uvicorn benchmarks.apps.raw:app``), so a server
process loads only the framework it serves.
"""
