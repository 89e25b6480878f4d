"""The endpoints: the document at /openapi.json, Swagger UI at /docs, ReDoc at /redoc."""

from __future__ import annotations

import pytest
from openapi_support import checked

from asgi_bg import App, Depends, HTTPException, Router
from asgi_bg.testing import AsyncTestClient

pytestmark = pytest.mark.anyio


def shop(**options: object) -> App:
    app = App(title="Shop", version="2.1", description="Things for sale", **options)  # type: ignore[arg-type]

    @app.get("/items/{item_id:int}")
    async def read_item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    return app


async def test_the_document_is_served_valid_and_without_the_docs_routes() -> None:
    async with AsyncTestClient(shop()) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = checked(response.json())
    assert document["info"] == {"title": "Shop", "version": "2.1", "description": "Things for sale"}
    assert list(document["paths"]) == ["/items/{item_id}"]
    assert "servers" not in document


async def test_swagger_ui_page_loads_the_document_and_default_assets() -> None:
    async with AsyncTestClient(shop()) as client:
        page = (await client.get("/docs")).text
        redirect = await client.get("/docs/oauth2-redirect")
    assert "<title>Shop - Swagger UI</title>" in page
    assert '"url": "/openapi.json"' in page
    assert "swagger-ui-dist@5/swagger-ui-bundle.js" in page
    assert "swagger-ui-dist@5/swagger-ui.css" in page
    assert '"/docs/oauth2-redirect"' in page
    assert redirect.status_code == 200
    assert "swaggerUIRedirectOauth2" in redirect.text


async def test_redoc_page_loads_the_document() -> None:
    async with AsyncTestClient(shop()) as client:
        page = (await client.get("/redoc")).text
    assert '<redoc spec-url="/openapi.json">' in page
    assert "redoc@2/bundles/redoc.standalone.js" in page


async def test_asset_urls_are_configurable_for_offline_deployments() -> None:
    app = shop(
        swagger_js_url="/static/ui.js",
        swagger_css_url="/static/ui.css",
        redoc_js_url="/static/redoc.js",
    )
    async with AsyncTestClient(app) as client:
        swagger = (await client.get("/docs")).text
        redoc = (await client.get("/redoc")).text
    assert '<script src="/static/ui.js">' in swagger
    assert '<link rel="stylesheet" href="/static/ui.css">' in swagger
    assert "cdn" not in swagger + redoc
    assert '<script src="/static/redoc.js">' in redoc


async def test_none_turns_each_endpoint_off() -> None:
    async with AsyncTestClient(shop(docs_url=None, redoc_url=None)) as client:
        assert (await client.get("/docs")).status_code == 404
        assert (await client.get("/redoc")).status_code == 404
        assert (await client.get("/openapi.json")).status_code == 200
    async with AsyncTestClient(shop(openapi_url=None)) as client:
        for path in ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"):
            assert (await client.get(path)).status_code == 404


async def test_other_urls() -> None:
    app = shop(openapi_url="/api/schema.json", docs_url="/api/docs")
    async with AsyncTestClient(app) as client:
        assert (await client.get("/api/schema.json")).status_code == 200
        assert '"url": "/api/schema.json"' in (await client.get("/api/docs")).text


async def test_root_path_is_the_first_server_and_prefixes_the_pages() -> None:
    app = shop(servers=[{"url": "https://shop.example", "description": "production"}])
    async with AsyncTestClient(app, root_path="/api") as client:
        document = checked((await client.get("/openapi.json")).json())
        page = (await client.get("/docs")).text
    assert document["servers"] == [
        {"url": "/api"},
        {"url": "https://shop.example", "description": "production"},
    ]
    assert '"url": "/api/openapi.json"' in page
    assert '"/api/docs/oauth2-redirect"' in page
    assert app.openapi()["servers"] == [
        {"url": "https://shop.example", "description": "production"}
    ]


async def test_a_mounted_app_serves_its_own_docs_under_its_prefix() -> None:
    parent = App()
    parent.mount("/v1", shop())
    async with AsyncTestClient(parent) as client:
        document = checked((await client.get("/v1/openapi.json")).json())
        page = (await client.get("/v1/docs")).text
        item = (await client.get("/v1/items/3")).json()
    assert document["servers"] == [{"url": "/v1"}]
    assert list(document["paths"]) == ["/items/{item_id}"]
    assert '"url": "/v1/openapi.json"' in page
    assert item == {"item_id": 3}
    assert "/v1/items/{item_id}" not in parent.openapi()["paths"]  # as FastAPI: not merged


async def test_included_routers_contribute_with_their_prefix() -> None:
    app = App()
    users = Router(prefix="/users")

    @users.get("/{user_id}")
    async def read_user(user_id: str) -> str:
        return user_id

    app.include_router(users, prefix="/v2")
    async with AsyncTestClient(app) as client:
        document = checked((await client.get("/openapi.json")).json())
    operation = document["paths"]["/v2/users/{user_id}"]["get"]
    assert operation["operationId"] == "read_user_v2_users__user_id__get"


def test_the_document_is_built_once() -> None:
    app = shop()
    first = app.openapi()
    assert app.openapi() is first

    @app.get("/later")
    async def later() -> None:
        return None

    assert "/later" not in app.openapi()["paths"]
    app.openapi_schema = None
    assert "/later" in app.openapi()["paths"]


async def test_an_overridden_openapi_is_what_the_endpoint_serves() -> None:
    app = shop()
    app.openapi = lambda: {"openapi": "3.1.0", "info": {"title": "x", "version": "1"}, "paths": {}}  # type: ignore[method-assign]
    async with AsyncTestClient(app) as client:
        assert (await client.get("/openapi.json")).json()["info"]["title"] == "x"


async def test_page_title_cannot_break_out_of_the_html() -> None:
    app = App(title="</title><script>alert(1)</script>")
    async with AsyncTestClient(app) as client:
        page = (await client.get("/docs")).text
    assert "<script>alert(1)" not in page
    assert "&lt;/title&gt;&lt;script&gt;" in page


async def test_app_wide_dependencies_do_not_guard_the_docs() -> None:
    def staff_only() -> None:
        raise HTTPException(403, "Staff only")

    app = App(dependencies=[Depends(staff_only)])

    @app.get("/private")
    async def private() -> str:
        return "secret"

    async with AsyncTestClient(app) as client:
        assert (await client.get("/private")).status_code == 403
        for path in ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"):
            assert (await client.get(path)).status_code == 200
    assert [route.path for route in app.router.routes] == ["/private"]


async def test_two_apps_serve_their_own_document_and_pages() -> None:
    first, second = shop(), App(title="Other", swagger_js_url="/other.js")

    @second.get("/other")
    async def other() -> None:
        return None

    async with AsyncTestClient(first) as client:
        assert list((await client.get("/openapi.json")).json()["paths"]) == ["/items/{item_id}"]
        assert "<title>Shop - Swagger UI</title>" in (await client.get("/docs")).text
    async with AsyncTestClient(second) as client:
        assert list((await client.get("/openapi.json")).json()["paths"]) == ["/other"]
        page = (await client.get("/docs")).text
    assert "<title>Other - Swagger UI</title>" in page
    assert '<script src="/other.js">' in page
