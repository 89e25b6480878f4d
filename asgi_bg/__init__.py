"""asgi_bg: a small, fast pure-ASGI framework whose centre is background tasks done right."""

from .applications import App
from .background import BackgroundTask, BackgroundTasks
from .exceptions import ConfigurationError, HTTPException, RequestValidationError
from .injection import Body, Cookie, Depends, Header, Query
from .requests import Request
from .responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from .routing import Router

__all__ = [
    "App",
    "BackgroundTask",
    "BackgroundTasks",
    "Body",
    "ConfigurationError",
    "Cookie",
    "Depends",
    "FileResponse",
    "HTMLResponse",
    "HTTPException",
    "Header",
    "JSONResponse",
    "PlainTextResponse",
    "Query",
    "RedirectResponse",
    "Request",
    "RequestValidationError",
    "Response",
    "Router",
    "StreamingResponse",
]
