"""Exceptions users raise or catch: HTTP errors, validation errors, configuration errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any


class HTTPException(Exception):
    """Answer the request with ``status_code`` and ``{"detail": detail}``.

    Args:
        status_code: the HTTP status to answer with.
        detail: any JSON-serialisable value; defaults to the status' reason phrase.
        headers: extra response headers, e.g. ``WWW-Authenticate``.
    """

    def __init__(
        self,
        status_code: int,
        detail: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if detail is None:
            detail = _phrase(status_code)
        super().__init__(status_code, detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers) if headers else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code}, detail={self.detail!r})"

    def __str__(self) -> str:
        return f"{self.status_code}: {self.detail}"


class RequestValidationError(Exception):
    """The request's parameters failed validation; answered as a 422 listing every error.

    ``errors()`` lists them, each ``{"loc": [source, name, ...], "msg": str, "type": str}``
    (a method, as in FastAPI, so its handler examples port unchanged).
    """

    def __init__(self, errors: Sequence[dict[str, Any]]) -> None:
        super().__init__(errors)
        self._errors = list(errors)

    def errors(self) -> list[dict[str, Any]]:
        """Every validation error of the request."""
        return self._errors


class ConfigurationError(Exception):
    """A route, dependency or mount was declared in a way asgi_bg cannot serve.

    Raised when the route is registered, never while serving a request.
    """


def _phrase(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"
