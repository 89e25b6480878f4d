"""OpenAPI for asgi_bg apps: the document, and the endpoints that serve it and the docs.

``App(...)`` calls ``install_endpoints`` once: it adds up to four static routes (the
document, Swagger UI, its OAuth2 redirect page, ReDoc), hidden from the document and
from ``app.router.routes``. Static routes are one dict entry each, so the other routes'
requests cost nothing more.
"""

from __future__ import annotations

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


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def install_endpoints(app: App) -> None:
    """Register the document and docs endpoints whose URLs ``app`` did not turn off."""
    if app.openapi_url is None:
        return  # the docs pages have nothing to show without the document
    openapi_url = app.openapi_url

    async def openapi_document(request: Request) -> Response:
        return JSONResponse(with_root_path(app.openapi(), _root(request)))

    _hidden_route(app, openapi_url, openapi_document)
    if app.docs_url is not None:
        _install_swagger_ui(app, app.docs_url, openapi_url)
    if app.redoc_url is not None:

        async def redoc(request: Request) -> Response:
            page = redoc_html(
                title=f"{app.title} - ReDoc",
                openapi_url=_root(request) + openapi_url,
                js_url=app.redoc_js_url,
            )
            return HTMLResponse(page)

        _hidden_route(app, app.redoc_url, redoc)


def _install_swagger_ui(app: App, docs_url: str, openapi_url: str) -> None:
    redirect_url = app.swagger_ui_oauth2_redirect_url

    async def swagger_ui(request: Request) -> Response:
        root = _root(request)
        page = swagger_ui_html(
            title=f"{app.title} - Swagger UI",
            openapi_url=root + openapi_url,
            js_url=app.swagger_js_url,
            css_url=app.swagger_css_url,
            oauth2_redirect_url=root + redirect_url if redirect_url else None,
        )
        return HTMLResponse(page)

    _hidden_route(app, docs_url, swagger_ui)
    if redirect_url:

        async def oauth2_redirect() -> Response:
            return HTMLResponse(OAUTH2_REDIRECT_HTML)

        _hidden_route(app, redirect_url, oauth2_redirect)


def _hidden_route(app: App, path: str, endpoint: typing.Callable[..., typing.Any]) -> None:
    # Made outside the app's group options, as FastAPI does: an app-wide
    # ``dependencies=[...]`` (an auth check, say) does not lock the docs out. Served, but
    # kept off ``app.router.routes``: that list is the app's own routes.
    route = Route(path, endpoint, methods=("GET",), include_in_schema=False)
    app.router._add(route)
    app.router.routes.remove(route)
