"""Issue 11 finding 8: ``set_cookie`` refuses attribute injection (RFC 6265 section 4.1.1).

``path="/; Domain=evil.com; SameSite=None"`` used to be written out as it is, adding
three attributes the app never meant to set.
"""

from __future__ import annotations

from typing import Any

import pytest
from raw_http import call

from asgi_bg import App, PlainTextResponse, Response

INJECTIONS: list[dict[str, Any]] = [
    {"path": "/; Domain=evil.com; SameSite=None"},
    {"path": "/\r\nSet-Cookie: admin=1"},
    {"path": "/a\x00b"},
    {"domain": "example.com; Secure"},
    {"domain": "evil.com\r\nX: y"},
    {"domain": "exa mple.com"},
    {"domain": "ex/ample.com"},
    {"samesite": "None; Domain=evil.com"},
    {"samesite": "sometimes"},
    {"expires": "Thu, 01 Jan 2099 00:00:00 GMT; Domain=evil.com"},
    {"key": "a;b"},
    {"key": "a b"},
    {"key": "a=b"},
    {"key": ""},
    {"key": "path"},
    {"value": "\u20ac uro"},
]


def cookie_args(overrides: dict[str, Any]) -> dict[str, Any]:
    return {"key": "session", "value": "abc", **overrides}


@pytest.mark.parametrize("overrides", INJECTIONS)
def test_set_cookie_refuses_attribute_injection(overrides: dict[str, Any]) -> None:
    response = Response()
    with pytest.raises(ValueError, match="cookie"):
        response.set_cookie(**cookie_args(overrides))
    assert "set-cookie" not in response.headers


# delete_cookie takes neither a value nor an expiry date.
@pytest.mark.parametrize("overrides", [i for i in INJECTIONS if not {"value", "expires"} & set(i)])
def test_delete_cookie_refuses_it_too(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="cookie"):
        Response().delete_cookie(**{"key": "session", **overrides})


@pytest.mark.anyio
async def test_an_injected_path_never_reaches_the_client() -> None:
    # The path comes from the request, as in the finding: the app answers 500, and no
    # set-cookie header (injected or not) is sent.
    app = App()

    @app.get("/remember")
    async def remember(where: str) -> Response:
        response = PlainTextResponse("ok")
        response.set_cookie("session", "abc", path=where)
        return response

    fine = await call(app, "/remember", query=b"where=/account")
    assert fine.headers["set-cookie"] == "session=abc; Path=/account; SameSite=lax"
    attack = await call(
        app, "/remember", query=b"where=/%3B%20Domain%3Devil.com%3B%20SameSite%3DNone"
    )
    assert attack.status == 500
    assert "set-cookie" not in attack.headers
