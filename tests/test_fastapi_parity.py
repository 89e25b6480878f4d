"""The "same as FastAPI" rows of docs/coming-from-fastapi.md, request for request.

``parity_app`` is written against asgi_bg; its twin is the same source with the import
lines changed to FastAPI's (``App`` is ``FastAPI``, ``Router`` is ``APIRouter``). Each
request goes to both apps, on asyncio and trio; status, JSON (or text) and the named
headers must be equal.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Literal

import httpx
import parity_app
import pytest
import starlette.responses
from openapi_support import fastapi_twin

import asgi_bg.responses
from asgi_bg.testing import TestClient

pytestmark = pytest.mark.anyio

TWIN = fastapi_twin("parity_app")

GOOD_CHECKS: dict[str, Any] = {
    "params": {"q": "abc", "n": "2.5"},
    "headers": {"user-agent": "probe", "x-token": "t"},
    "cookies": {"session": "abcdefgh"},
    "json": {"note": "hi"},
}
BAD_CHECKS: dict[str, Any] = {
    "params": {"q": "ABCDEFG", "n": "0.3", "item-count": "4"},
    "headers": {"user-agent": "probe"},
    "cookies": {"session": "much-too-long"},
    "json": {"note": "far too long a note"},
}
TYPES = (
    "/types?d=1.50&when=2024-05-06T07:08:09&day=2024-05-06&at=07:08&span=PT1M30S&raw=hi"
    "&s=3&s=1&s=3&f=b&f=a&f=b&t=2&t=1&t=2"
)
FILES = [
    ("doc", ("a.txt", b"alpha", "text/plain")),
    ("more", ("b.bin", b"b", "application/octet-stream")),
    ("more", ("c.bin", b"c", "application/octet-stream")),
]

# (row of the page, method, path, httpx arguments)
REQUESTS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("decorators", "PUT", "/verbs", {}),
    ("decorators", "PATCH", "/verbs", {}),
    ("decorators", "OPTIONS", "/verbs", {}),
    ("decorators", "GET", "/named/a", {}),
    ("routers", "GET", "/v1/items/3", {}),
    ("routers", "GET", "/v1/items/x", {}),
    ("depends", "GET", "/cached", {}),
    ("alias", "GET", "/alias", {"headers": {"user": "ann"}}),
    ("kinds", "GET", "/kinds?q=y", {}),
    ("yield", "GET", "/owner/1", {}),
    ("yield", "GET", "/owner/13", {}),
    ("yield", "GET", "/function-scope", {}),
    ("checks", "POST", "/checks/1", GOOD_CHECKS),
    ("checks", "POST", "/checks/1", {}),
    ("types", "GET", TYPES, {}),
    ("types", "POST", "/outer", {"json": {"name": "n", "inner": {"price": "1.5"}, "tags": []}}),
    ("types", "POST", "/outer", {"json": {"name": "n", "inner": {}, "tags": "x"}}),
    ("lax", "POST", "/lax", {"json": {"count": "5", "on": "yes"}}),
    ("lax", "POST", "/lax", {"json": {"count": 5.0, "on": 1}}),
    ("lax", "POST", "/lax", {"json": {"count": 5.5, "on": "maybe"}}),
    (
        "content-type",
        "POST",
        "/lax",
        {"content": b'{"count": 1}', "headers": {"content-type": "application/vnd.x+json"}},
    ),
    (
        "malformed",
        "POST",
        "/lax",
        {"content": b'{"count": 1,', "headers": {"content-type": "application/json"}},
    ),
    ("decimal", "GET", "/decimal", {}),
    ("thread", "GET", "/in-thread", {}),
    ("http-exception", "GET", "/http-error", {}),
    ("exception-handler", "GET", "/teapot", {}),
    ("exception-handler", "GET", "/nowhere", {}),
    (
        "request",
        "POST",
        "/request?m=1&m=2",
        {"json": {"a": 1}, "headers": {"x-one": "1"}, "cookies": {"c": "v"}},
    ),
    ("405", "GET", "/only-post", {}),
    ("forms", "POST", "/form", {"data": {"name": "ann"}, "files": FILES[:1]}),
    ("forms", "POST", "/form-params", {"data": {"name": "ann"}, "files": FILES}),
    ("forms", "POST", "/form-params", {"data": {"name": "toolong"}}),
    ("static", "GET", "/static/hello.txt", {}),
    ("static", "GET", "/static/missing.txt", {}),
    ("static", "POST", "/static/hello.txt", {}),
]
HEADERS = ("x-stamp", "x-why", "allow", "location", "content-type", "content-length")


async def answer(app: Any, method: str, path: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs = dict(kwargs)
    cookies = kwargs.pop("cookies", None)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", cookies=cookies
    ) as client:
        response = await client.request(method, path, **kwargs)
    content_type = response.headers.get("content-type", "")
    json = content_type.startswith("application/json") and response.content
    body = response.json() if json else response.text
    headers = {name: response.headers.get(name) for name in HEADERS}
    return {"status": response.status_code, "body": body, "headers": headers}


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [pytest.param(m, p, k, id=f"{row}:{m} {p[:40]}") for row, m, p, k in REQUESTS],
)
async def test_same_answer_as_fastapi(method: str, path: str, kwargs: dict[str, Any]) -> None:
    ours = await answer(parity_app.app, method, path, kwargs)
    theirs = await answer(TWIN.app, method, path, kwargs)
    assert ours == theirs


async def both(method: str, path: str, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    return [await answer(app, method, path, kwargs) for app in (parity_app.app, TWIN.app)]


async def test_check_violations_are_the_same_items() -> None:
    # The same items; asgi_bg lists them in declaration order, FastAPI groups them by
    # source (a query parameter declared after the body comes earlier there).
    ours, theirs = await both("POST", "/checks/0", BAD_CHECKS)
    assert ours["status"] == theirs["status"] == 422

    def key(item: dict[str, Any]) -> str:
        return repr(item["loc"])

    assert sorted(ours["body"]["detail"], key=key) == sorted(theirs["body"]["detail"], key=key)


async def test_bad_dates_times_and_durations_get_the_same_items() -> None:
    # pydantic's reason included: "Input should be a valid datetime or date, input is
    # too short", with ctx.error (test_moments.py compares many more inputs).
    path = "/types?d=x&when=soon&day=2024-13-01&at=25:00&span=z"
    ours, theirs = await both("GET", path, {})
    assert ours["status"] == theirs["status"] == 422
    assert ours["body"]["detail"] == theirs["body"]["detail"]
    assert ours["body"]["detail"][1]["ctx"] == {"error": "input is too short"}


async def test_a_body_without_a_json_content_type_is_refused_by_both() -> None:
    for kwargs in ({"content": b'{"count": 1, "on": true}'}, {"data": {"count": "1"}}):
        ours, theirs = await both("POST", "/lax", kwargs)
        assert ours["status"] == theirs["status"] == 422
        assert [e["loc"] for e in ours["body"]["detail"]] == [["body"]]
        assert ours["body"]["detail"][0]["type"] == "model_attributes_type"
        assert theirs["body"]["detail"][0]["type"] == "dataclass_type"  # listed difference


async def test_known_differences_in_routing() -> None:
    ours, theirs = await both("GET", "/users/me", {})
    # Declared after /users/{user_id}: asgi_bg still picks the static route.
    assert (ours["body"], theirs["body"]) == ({"user": "me"}, {"id": "me"})
    ours, theirs = await both("HEAD", "/users/1", {})
    assert (ours["status"], theirs["status"]) == (200, 405)


async def test_known_differences_in_allow_and_location() -> None:
    ours, theirs = await both("DELETE", "/slash/", {})
    assert (ours["headers"]["allow"], theirs["headers"]["allow"]) == ("GET, HEAD", "GET")
    ours, theirs = await both("GET", "/slash", {"follow_redirects": False})
    assert ours["status"] == theirs["status"] == 307
    location = (ours["headers"]["location"], theirs["headers"]["location"])
    assert location == ("/slash/", "http://testserver/slash/")


async def test_a_204_route_returning_none_sends_no_body() -> None:
    ours, theirs = await both("DELETE", "/verbs", {})
    assert ours == theirs


async def test_a_typing_extensions_typeddict_is_a_body() -> None:
    for body in ({"x": 1, "y": "2"}, {"x": 1}):
        ours, theirs = await both("POST", "/point", {"json": body})
        assert ours == theirs


async def test_a_request_validation_error_handler_sees_the_same_errors() -> None:
    for query in ("?n=1", "?n=x", ""):
        ours = await answer(parity_app.handled, "GET", "/number" + query, {})
        theirs = await answer(TWIN.handled, "GET", "/number" + query, {})
        assert ours == theirs


async def test_dependencies_on_app_router_include_and_route_all_run() -> None:
    for module in (parity_app, TWIN):
        module.calls.clear()
        await answer(module.app, "GET", "/v1/items/3", {})
        await answer(module.app, "GET", "/cached", {})
    assert sorted(parity_app.calls) == sorted(TWIN.calls)
    assert len(set(parity_app.calls)) == 5  # app, include, router; app, route


@pytest.mark.parametrize(
    "name",
    [
        "Response",
        "JSONResponse",
        "HTMLResponse",
        "PlainTextResponse",
        "RedirectResponse",
        "StreamingResponse",
        "FileResponse",
    ],
)
def test_response_classes_take_starlettes_arguments(name: str) -> None:
    ours = inspect.signature(getattr(asgi_bg.responses, name).__init__).parameters
    theirs = inspect.signature(getattr(starlette.responses, name).__init__).parameters
    assert list(ours) == list(theirs)
    # Where Starlette has a default, the same one; asgi_bg may default what Starlette
    # requires (``JSONResponse(content=None)``).
    defaults = {n: p.default for n, p in theirs.items() if p.default is not p.empty}
    assert {n: ours[n].default for n in defaults} == defaults


async def test_background_tasks_take_positional_and_keyword_arguments() -> None:
    for module in (parity_app, TWIN):
        module.ran.clear()
        assert (await answer(module.app, "POST", "/tasks", {}))["status"] == 200
    assert parity_app.ran == TWIN.ran == ["a-b"]


async def test_a_yield_dependencys_exit_code_runs_after_the_tasks() -> None:
    for module in (parity_app, TWIN):
        module.ran.clear()
        await answer(module.app, "POST", "/teardown-order", {})
    assert parity_app.ran == TWIN.ran == ["open", "task uses session", "close"]


async def test_an_upload_is_still_readable_in_the_tasks() -> None:
    for module in (parity_app, TWIN):
        module.ran.clear()
        await answer(module.app, "POST", "/upload-task", {"files": FILES[:1]})
    assert parity_app.ran == TWIN.ran == ["alpha"]


async def test_response_models_without_pydantic_models_are_not_applied() -> None:
    ours, theirs = await both("GET", "/unfiltered", {})
    assert ours["body"] == {"count": 1, "on": True, "extra": "kept by asgi_bg"}
    assert theirs["body"] == {"count": 1, "on": True}
    # FastAPI makes a return annotation its response model: pydantic writes Decimal as text.
    ours, theirs = await both("GET", "/decimal-annotated", {})
    assert (ours["body"], theirs["body"]) == ({"price": 1.5}, {"price": "1.50"})


async def test_overrides_apply_at_any_depth_and_clear() -> None:
    results = []
    for module in (parity_app, TWIN):
        module.app.dependency_overrides[module.real_db] = lambda: "fake"
        overridden = await answer(module.app, "GET", "/repo", {})
        module.app.dependency_overrides.clear()
        cleared = await answer(module.app, "GET", "/repo", {})
        results.append((overridden["body"], cleared["body"]))
    assert results[0] == results[1] == ({"repo": "repo over fake"}, {"repo": "repo over real"})


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_websocket_routes_answer_the_same(backend: Literal["asyncio", "trio"]) -> None:
    with warnings.catch_warnings():
        # Starlette's client warns that it will move to httpx2; not what is tested here.
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient as FastAPIClient  # noqa: PLC0415
    seen = []
    for client in (
        TestClient(parity_app.app, backend=backend),
        FastAPIClient(TWIN.app, backend=backend),
    ):
        with client.websocket_connect("/ws/blue", headers={"user": "ann"}) as ws:
            ws.send_text("hi")
            seen.append(ws.receive_json())
    assert seen[0] == seen[1] == {"room": "blue", "who": "ann", "text": "hi"}


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_group_and_route_dependencies_run_for_websocket_routes(
    backend: Literal["asyncio", "trio"],
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient as FastAPIClient  # noqa: PLC0415
    seen = []
    for module, client in (
        (parity_app, TestClient(parity_app.app, backend=backend)),
        (TWIN, FastAPIClient(TWIN.app, backend=backend)),
    ):
        module.calls.clear()
        with client.websocket_connect("/v1/items/ws") as ws:
            assert ws.receive_text() == "ok"
        seen.append(list(module.calls))
    path = "/v1/items/ws"
    expected = [f"app {path}", f"include {path}", f"router {path}", f"route {path}"]
    assert seen[0] == seen[1] == expected
