"""The security schemes as dependencies: the same answers as FastAPI's for the same requests.

``openapi_guarded`` puts every scheme on a route, required and optional
(``auto_error=False``); its FastAPI twin is the same source with FastAPI's import line.
Each request goes to both apps; status, ``detail``, the ``WWW-Authenticate`` challenge
and the value the handler got must be equal.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import openapi_guarded
import pytest
from openapi_support import fastapi_twin

from asgi_bg.security import HTTPBasic, get_authorization_scheme_param

pytestmark = pytest.mark.anyio

TWIN = fastapi_twin("openapi_guarded")


def basic(credentials: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials).decode()}


# (scheme, request headers, query, cookies); each is sent to /required/... and /optional/...
CASES: list[tuple[str, dict[str, str], dict[str, str], dict[str, str]]] = [
    ("bearer", {}, {}, {}),
    ("bearer", {"Authorization": "Bearer abc.def"}, {}, {}),
    ("bearer", {"Authorization": "bearer   spaced"}, {}, {}),
    ("bearer", {"Authorization": "Basic abc"}, {}, {}),
    ("bearer", {"Authorization": "Bearer"}, {}, {}),
    ("basic", {}, {}, {}),
    ("basic", basic(b"ann:secret:with:colons"), {}, {}),
    ("basic", basic(b"no-colon"), {}, {}),
    ("basic", {"Authorization": "Basic !!!not-base64"}, {}, {}),
    ("basic", basic("jos\u00e9:x".encode()), {}, {}),
    ("basic", {"Authorization": "Bearer abc"}, {}, {}),
    ("header-key", {}, {}, {}),
    ("header-key", {"x-api-key": "k1"}, {}, {}),
    ("header-key", {"X-API-Key": ""}, {}, {}),
    ("query-key", {}, {}, {}),
    ("query-key", {}, {"api_key": "k2"}, {}),
    ("cookie-key", {}, {}, {}),
    ("cookie-key", {}, {}, {"session": "k3"}),
    ("oauth2", {}, {}, {}),
    ("oauth2", {"Authorization": "Bearer tok"}, {}, {}),
    ("oauth2", {"Authorization": "Token tok"}, {}, {}),
]


async def answer(
    app: Any, path: str, headers: dict[str, str], query: dict[str, str], cookies: dict[str, str]
) -> tuple[int, Any, str | None]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", cookies=cookies
    ) as client:
        response = await client.get(path, headers=headers, params=query)
    return response.status_code, response.json(), response.headers.get("www-authenticate")


@pytest.mark.parametrize("kind", ["required", "optional"])
@pytest.mark.parametrize(("scheme", "headers", "query", "cookies"), CASES)
async def test_same_answer_as_fastapi(
    kind: str, scheme: str, headers: dict[str, str], query: dict[str, str], cookies: dict[str, str]
) -> None:
    path = f"/{kind}/{scheme}"
    ours = await answer(openapi_guarded.app, path, headers, query, cookies)
    theirs = await answer(TWIN.app, path, headers, query, cookies)
    assert ours == theirs


async def test_missing_bearer_token_is_a_401_with_a_challenge() -> None:
    status, body, challenge = await answer(openapi_guarded.app, "/required/bearer", {}, {}, {})
    assert (status, body, challenge) == (401, {"detail": "Not authenticated"}, "Bearer")


async def test_optional_scheme_without_credentials_gives_none() -> None:
    status, body, _ = await answer(openapi_guarded.app, "/optional/header-key", {}, {}, {})
    assert (status, body) == (200, {"value": None})


async def test_basic_realm_is_in_the_challenge() -> None:
    _, _, challenge = await answer(openapi_guarded.app, "/required/basic", {}, {}, {})
    assert challenge == 'Basic realm="shop"'


async def test_a_scheme_behind_another_dependency_still_guards() -> None:
    refused = await answer(openapi_guarded.app, "/me", {}, {}, {})
    assert refused[0] == 401
    granted = await answer(openapi_guarded.app, "/me", {"Authorization": "Bearer t"}, {}, {})
    assert granted[:2] == (200, {"user": "T"})


def test_authorization_header_is_split_at_the_first_space() -> None:
    assert get_authorization_scheme_param("Bearer a b") == ("Bearer", "a b")
    assert get_authorization_scheme_param(None) == ("", "")


def test_scheme_names_default_to_the_class_name() -> None:
    assert HTTPBasic().scheme_name == "HTTPBasic"
    assert HTTPBasic(scheme_name="Staff").model == {"type": "http", "scheme": "basic"}
