"""Issue 10 defect 9: responses take Starlette's arguments and send Starlette's headers.

Each test builds the same response with asgi_bg and with Starlette (installed with the
``test`` extra), serves both with the same request, and compares what a client sees.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import starlette.responses
import starlette.staticfiles
from raw_http import Answer, call

from asgi_bg import FileResponse, Response, StaticFiles

COOKIES: list[dict[str, Any]] = [
    {},
    {"value": 'a b;c"d\\e'},
    {"value": "caf\u00e9", "max_age": 60, "httponly": True, "secure": True},
    {"domain": ".example.com", "path": "/app", "samesite": "strict"},
    {"samesite": None, "path": None},
    {"samesite": "none", "secure": True},
    {"expires": "Thu, 01 Jan 2099 00:00:00 GMT"},
    {"key": "__Host-id"},
]


@pytest.mark.parametrize("overrides", COOKIES)
def test_set_cookie_writes_starlettes_header(overrides: dict[str, Any]) -> None:
    arguments = {"key": "session", "value": "abc", **overrides}
    ours, theirs = Response(), starlette.responses.Response()
    ours.set_cookie(**arguments)
    theirs.set_cookie(**arguments)
    assert ours.headers.getlist("set-cookie") == theirs.headers.getlist("set-cookie")


def test_delete_cookie_writes_starlettes_header() -> None:
    ours, theirs = Response(), starlette.responses.Response()
    ours.delete_cookie("session", path="/app", domain="example.com")
    theirs.delete_cookie("session", path="/app", domain="example.com")
    # Both carry "expires" a few milliseconds apart: compare all but that attribute.
    assert _without_expires(ours) == _without_expires(theirs)


def _without_expires(response: Any) -> list[str]:
    header: str = response.headers["set-cookie"]
    return [a for a in header.split("; ") if not a.startswith("expires=")]


def test_partitioned_cookies_are_accepted() -> None:
    ours = Response()
    ours.set_cookie("session", "abc", secure=True, samesite="none", partitioned=True)
    attributes = ours.headers["set-cookie"].split("; ")
    theirs = starlette.responses.Response()
    if sys.version_info >= (3, 14):
        theirs.set_cookie("session", "abc", secure=True, samesite="none", partitioned=True)
        assert sorted(attributes) == sorted(theirs.headers["set-cookie"].split("; "))
    else:
        # Starlette refuses partitioned=True before Python 3.14 (http.cookies lacks it);
        # asgi_bg writes the attribute itself.
        theirs.set_cookie("session", "abc", secure=True, samesite="none")
        assert attributes == [*theirs.headers["set-cookie"].split("; "), "Partitioned"]
    ours.delete_cookie("session", partitioned=True)
    assert ours.headers.getlist("set-cookie")[1].endswith("; Partitioned")


@pytest.fixture
def files(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "report.csv").write_text("id,total\n1,20\n")
    (tmp_path / "data.unknownext").write_bytes(bytes(range(256)) * 4)
    yield tmp_path


async def both(
    scope_path: Path, headers: dict[str, str] | None = None, method: str = "GET", **kw: Any
) -> tuple[Answer, Answer]:
    ours = await call(FileResponse(scope_path, **kw), "/f", headers=headers, method=method)
    theirs_app = starlette.responses.FileResponse(scope_path, **kw)
    theirs = await call(theirs_app, "/f", headers=headers, method=method)
    return ours, theirs


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("report.csv", {}),
        ("report.csv", {"filename": "report.csv"}),
        ("report.csv", {"filename": "rapport été.csv"}),
        ("report.csv", {"filename": 'a"b.csv'}),
        ("report.csv", {"filename": "report.csv", "content_disposition_type": "inline"}),
        ("report.csv", {"media_type": "text/plain"}),
        ("report.csv", {"headers": {"content-disposition": "inline", "etag": '"mine"'}}),
        ("data.unknownext", {}),
        ("data.unknownext", {"filename": "dump"}),
    ],
)
async def test_file_headers_are_starlettes(
    files: Path, name: str, arguments: dict[str, Any]
) -> None:
    ours, theirs = await both(files / name, **arguments)
    assert ours.status == theirs.status == 200
    assert dict(ours.headers) == dict(theirs.headers)
    assert ours.body == theirs.body


@pytest.mark.anyio
@pytest.mark.parametrize(
    "value",
    ["bytes=0-9", "bytes=10-", "bytes=-16", "bytes=1000-2000", "bytes=0-0", "bytes=5-5000"],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_single_ranges_are_starlettes(files: Path, value: str, method: str) -> None:
    ours, theirs = await both(files / "data.unknownext", {"range": value}, method)
    assert (ours.status, ours.body) == (theirs.status, theirs.body) == (206, ours.body)
    assert dict(ours.headers) == dict(theirs.headers)


@pytest.mark.anyio
@pytest.mark.parametrize("value", ["bytes=1024-", "bytes=5000-6000", "bytes=-0"])
async def test_unsatisfiable_ranges_answer_416_with_the_size(files: Path, value: str) -> None:
    ours, theirs = await both(files / "data.unknownext", {"range": value})
    assert ours.status == theirs.status == 416
    assert ours.headers["content-range"] == theirs.headers["content-range"] == "bytes */1024"


@pytest.mark.anyio
async def test_multiple_ranges_are_multipart_byteranges(files: Path) -> None:
    ours, theirs = await both(files / "data.unknownext", {"range": "bytes=0-2, 10-12, -2"})
    assert ours.status == theirs.status == 206
    ours_type, theirs_type = ours.headers["content-type"], theirs.headers["content-type"]
    assert ours_type.startswith("multipart/byteranges; boundary=")
    boundary = ours_type.partition("boundary=")[2].encode()
    data = bytes(range(256)) * 4
    parts = ours.body.split(b"--" + boundary)
    assert parts[0] == b"" and parts[-1].strip() == b"--"
    assert [p.partition(b"\r\n\r\n")[2].removesuffix(b"\r\n") for p in parts[1:-1]] == [
        data[0:3],
        data[10:13],
        data[-2:],
    ]
    assert b"content-range: bytes 10-12/1024" in parts[2].lower()
    assert int(ours.headers["content-length"]) == len(ours.body)
    # The same parts as Starlette's once the boundaries are set aside.
    their_boundary = theirs_type.partition("boundary=")[2].encode()
    their_parts = theirs.body.split(b"--" + their_boundary)
    assert [p.lower().strip() for p in parts[1:-1]] == [
        p.lower().strip() for p in their_parts[1:-1]
    ]


@pytest.mark.anyio
async def test_if_range_with_another_validator_sends_the_whole_file(files: Path) -> None:
    headers = {"range": "bytes=0-9", "if-range": '"some-older-etag"'}
    ours, theirs = await both(files / "data.unknownext", headers)
    assert ours.status == theirs.status == 200
    assert ours.body == theirs.body == bytes(range(256)) * 4
    etag = ours.headers["etag"]
    matching, _ = await both(files / "data.unknownext", {"range": "bytes=0-9", "if-range": etag})
    assert (matching.status, matching.body) == (206, bytes(range(10)))


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/report.csv", {}),
        ("/report.csv", {"range": "bytes=0-3"}),
        ("/report.csv", {"if-modified-since": "Fri, 01 Jan 2100 00:00:00 GMT"}),
        ("/report.csv", {"if-none-match": "*"}),
        ("/sub/", {}),
    ],
)
async def test_static_files_answer_as_starlettes(
    files: Path, path: str, headers: dict[str, str]
) -> None:
    (files / "sub").mkdir()
    (files / "sub" / "index.html").write_text("<p>sub</p>")
    ours_app = StaticFiles(directory=files, html=True)
    theirs_app = starlette.staticfiles.StaticFiles(directory=files, html=True)
    ours = await call(ours_app, path, headers=headers)
    theirs = await call(theirs_app, path, headers=headers)
    assert (ours.status, ours.body) == (theirs.status, theirs.body)
    assert dict(ours.headers) == dict(theirs.headers)
