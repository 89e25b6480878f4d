"""Issue 11 finding 11: integer and float parameters read only ASCII digits.

Python's ``int()`` and ``float()`` accept fullwidth and other Unicode digits, ``1_000``
and surrounding spaces. A WAF or a cache in front of the app reads fullwidth ``12`` as text, not
as 12; asgi_bg must read it the same way, so each of them is a 422.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, unquote

import pytest
from raw_http import call

from asgi_bg import App, Cookie, Header

pytestmark = pytest.mark.anyio

FULLWIDTH_12 = "\uff11\uff12"
ARABIC_12 = "\u0661\u0662"
NOT_INTEGERS = [
    FULLWIDTH_12,
    ARABIC_12,
    "1_000",
    " 12",
    "12 ",
    "\t12",
    "+ 1",
    "--1",
    "0x10",
    "1e3",
    "",
]
NOT_FLOATS = ["\uff11.\uff15", "\u0661.\u0665", "1_0.5", " 1.5", "1.5 ", "1.5\n", "0x1p3", "1.5e"]


def numbers_app() -> App:
    app = App()

    @app.get("/query")
    async def query(n: int | None = None, x: float | None = None) -> list[float | None]:
        return [n, x]

    @app.get("/header")
    async def header(n: Annotated[int, Header()]) -> int:
        return n

    @app.get("/cookie")
    async def cookie(n: Annotated[int, Cookie()]) -> int:
        return n

    @app.get("/typed/{n}")
    async def typed(n: int) -> int:
        return n

    @app.get("/converted/{n:int}")
    async def converted(n: int) -> int:
        return n

    return app


@pytest.mark.parametrize("text", NOT_INTEGERS)
async def test_integer_query_parameters_take_ascii_digits_only(text: str) -> None:
    answer = await call(numbers_app(), "/query", query=f"n={quote(text)}".encode())
    assert answer.status == 422, answer.body
    assert b"int_parsing" in answer.body


@pytest.mark.parametrize("text", NOT_FLOATS)
async def test_float_query_parameters_take_ascii_digits_only(text: str) -> None:
    answer = await call(numbers_app(), "/query", query=f"x={quote(text)}".encode())
    assert answer.status == 422, answer.body
    assert b"float_parsing" in answer.body


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"n=12", b"[12,null]"),
        (b"n=-12", b"[-12,null]"),
        (b"n=%2B12", b"[12,null]"),
        (b"n=007", b"[7,null]"),
        (b"x=1.5", b"[null,1.5]"),
        (b"x=-.5", b"[null,-0.5]"),
        (b"x=2.", b"[null,2.0]"),
        (b"x=1e3", b"[null,1000.0]"),
        (b"x=%2B1.5E-2", b"[null,0.015]"),
        (b"x=3", b"[null,3.0]"),
    ],
)
async def test_plain_numbers_still_parse(query: bytes, expected: bytes) -> None:
    answer = await call(numbers_app(), "/query", query=query)
    assert (answer.status, answer.body) == (200, expected)


@pytest.mark.parametrize("text", ["1_000", " 7", "7 ", "0x7"])
async def test_integer_headers_take_ascii_digits_only(text: str) -> None:
    answer = await call(numbers_app(), "/header", headers={"n": text})
    assert answer.status == 422, answer.body
    assert (await call(numbers_app(), "/header", headers={"n": "-7"})).body == b"-7"


@pytest.mark.parametrize("text", [FULLWIDTH_12, ARABIC_12, "1_000", "%2012"])
async def test_integer_path_parameters_take_ascii_digits_only(text: str) -> None:
    app = numbers_app()
    # A str segment annotated int: the route matches, the value is refused.
    assert (await call(app, "/typed/" + unquote(text))).status == 422
    # The int converter: the path does not match this route at all.
    assert (await call(app, "/converted/" + unquote(text))).status == 404
    assert (await call(app, "/typed/12")).body == b"12"


@pytest.mark.parametrize("text", ["1_000", "0x7", "%2B%207"])
async def test_integer_cookies_take_ascii_digits_only(text: str) -> None:
    answer = await call(numbers_app(), "/cookie", headers={"cookie": f"n={text}"})
    assert answer.status == 422, answer.body
    assert (await call(numbers_app(), "/cookie", headers={"cookie": "n=7"})).body == b"7"
