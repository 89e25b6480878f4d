"""OpenAPI for asgi_bg apps: the document, and the endpoints that serve it and the docs.

``App(...)`` calls ``install_endpoints`` once: it adds up to four static routes (the
document, Swagger UI, its OAuth2 redirect page, ReDoc), hidden from the document and
from ``app.router.routes``. Static routes are one dict entry each, so the other routes'
requests cost nothing more.
"""

from __future__ import annotations

import functools
import typing

from ..requests import Request
from ..responses import HTMLResponse, JSONResponse, Response
from ..routing import Route
from .document import build_document, with_root_path
from .pages import OAUTH2_REDIRECT_HTML, redoc_html, swagger_ui_html
from .schema import SchemaRegistry

if typing.TYPE_CHECKING:
    from ..applications import App

__all__ = ["SchemaRegistry", "build_document", "install_endpoints"]


def install_endpoints(app: App) -> None:
    """Register the document and docs endpoints whose URLs ``app`` did not turn off."""
    if app.openapi_url is None:
        return  # the docs pages have nothing to show without the document
    urls = [
        ("document", app.openapi_url),
        ("swagger_ui", app.docs_url),
        ("oauth2_redirect", app.docs_url and app.swagger_ui_oauth2_redirect_url),
        ("redoc", app.redoc_url),
    ]
    for page, url in urls:
        if url:
            route = _route(page, url)
            # Outside the app's group options, as FastAPI does: an app-wide
            # ``dependencies=[...]`` (an auth check, say) does not lock the docs out.
            # Served, but kept off ``app.router.routes``: that list is the app's own.
            app.router._add(route)
            app.router.routes.remove(route)


@functools.cache
def _route(page: str, path: str) -> Route:
    """One route per page and path, shared by every app (the endpoints read the app from
    the request): compiling a route costs about half a millisecond, and tests make
    thousands of apps."""
    return Route(path, _PAGES[page], methods=("GET",), include_in_schema=False)


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


async def _document(request: Request) -> Response:
    app: App = request.app
    return JSONResponse(with_root_path(app.openapi(), _root(request)))


async def _swagger_ui(request: Request) -> Response:
    app: App = request.app
    root = _root(request)
    redirect_url = app.swagger_ui_oauth2_redirect_url
    page = swagger_ui_html(
        title=f"{app.title} - Swagger UI",
        openapi_url=root + str(app.openapi_url),
        js_url=app.swagger_js_url,
        css_url=app.swagger_css_url,
        oauth2_redirect_url=root + redirect_url if redirect_url else None,
    )
    return HTMLResponse(page)


async def _oauth2_redirect() -> Response:
    return HTMLResponse(OAUTH2_REDIRECT_HTML)


async def _redoc(request: Request) -> Response:
    app: App = request.app
    page = redoc_html(
        title=f"{app.title} - ReDoc",
        openapi_url=_root(request) + str(app.openapi_url),
        js_url=app.redoc_js_url,
    )
    return HTMLResponse(page)


_PAGES: dict[str, typing.Callable[..., typing.Awaitable[Response]]] = {
    "document": _document,
    "swagger_ui": _swagger_ui,
    "oauth2_redirect": _oauth2_redirect,
    "redoc": _redoc,
}
