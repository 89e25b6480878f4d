"""``StaticFiles`` (issue 11 finding 9): serving a folder, and nothing outside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from raw_http import Answer, call, exchange, serving

from asgi_bg import App, HTTPException, JSONResponse, Request, Response, StaticFiles

pytestmark = pytest.mark.anyio

SECRET = b"the secret next to the public folder"


@pytest.fixture
def public(tmp_path: Path) -> Path:
    (tmp_path / "secret.txt").write_bytes(SECRET)
    folder = tmp_path / "public"
    (folder / "docs").mkdir(parents=True)
    (folder / "empty").mkdir()
    (folder / "a.txt").write_text("hello")
    (folder / "data.bin").write_bytes(bytes(range(100)))
    (folder / "index.html").write_text("<h1>home</h1>")
    (folder / "docs" / "index.html").write_text("<h1>docs</h1>")
    (folder / "404.html").write_text("<h1>lost</h1>")
    (folder / "link-out.txt").symlink_to(tmp_path / "secret.txt")
    (folder / "link-in.txt").symlink_to(folder / "a.txt")
    (folder / "dir-out").symlink_to(tmp_path)
    return folder


def mounted(folder: Path, **options: bool) -> App:
    app = App()
    app.mount("/static", StaticFiles(directory=folder, **options))
    return app


async def get(app: App, path: str, **headers: str) -> Answer:
    return await call(app, path, headers={k.replace("_", "-"): v for k, v in headers.items()})


async def test_serves_a_file_with_validators(public: Path) -> None:
    answer = await get(mounted(public), "/static/a.txt")
    assert (answer.status, answer.body) == (200, b"hello")
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.headers["content-length"] == "5"
    assert answer.headers["accept-ranges"] == "bytes"
    assert {"etag", "last-modified"} <= set(answer.headers)


async def test_head_sends_the_headers_without_the_body(public: Path) -> None:
    answer = await call(mounted(public), "/static/a.txt", method="HEAD")
    assert (answer.status, answer.body, answer.headers["content-length"]) == (200, b"", "5")


async def test_other_methods_are_405(public: Path) -> None:
    answer = await call(mounted(public), "/static/a.txt", method="POST")
    assert (answer.status, answer.headers["allow"]) == (405, "GET, HEAD")


# --- conditional requests --------------------------------------------------------------


async def test_a_matching_etag_answers_304_without_a_body(public: Path) -> None:
    app = mounted(public)
    etag = (await get(app, "/static/a.txt")).headers["etag"]
    for value in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        answer = await get(app, "/static/a.txt", if_none_match=value)
        assert (answer.status, answer.body) == (304, b""), value
        assert answer.headers["etag"] == etag
        assert "content-length" not in answer.headers
    assert (await get(app, "/static/a.txt", if_none_match='"other"')).status == 200


async def test_if_modified_since_answers_304_when_the_copy_is_current(public: Path) -> None:
    app = mounted(public)
    modified = (await get(app, "/static/a.txt")).headers["last-modified"]
    assert (await get(app, "/static/a.txt", if_modified_since=modified)).status == 304
    later = "Fri, 01 Jan 2100 00:00:00 GMT"
    assert (await get(app, "/static/a.txt", if_modified_since=later)).status == 304
    earlier = "Thu, 01 Jan 1970 00:00:00 GMT"
    assert (await get(app, "/static/a.txt", if_modified_since=earlier)).status == 200
    assert (await get(app, "/static/a.txt", if_modified_since="yesterday")).status == 200
    # If-None-Match decides alone when both are sent (RFC 9110 section 13.1.3).
    both = await get(app, "/static/a.txt", if_none_match='"other"', if_modified_since=later)
    assert both.status == 200


# --- ranges ------------------------------------------------------------------------------


async def test_range_requests(public: Path) -> None:
    app = mounted(public)
    single = await get(app, "/static/data.bin", range="bytes=10-19")
    assert (single.status, single.body) == (206, bytes(range(10, 20)))
    assert single.headers["content-range"] == "bytes 10-19/100"
    several = await get(app, "/static/data.bin", range="bytes=0-1,50-51")
    assert several.status == 206
    assert several.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert b"content-range: bytes 50-51/100\r\n\r\n" + bytes([50, 51]) in several.body
    unsatisfiable = await get(app, "/static/data.bin", range="bytes=100-")
    assert unsatisfiable.status == 416
    assert unsatisfiable.headers["content-range"] == "bytes */100"
    ignored = await get(app, "/static/data.bin", range="bytes=1_0-20")
    assert (ignored.status, ignored.body) == (200, bytes(range(100)))


# --- html mode ---------------------------------------------------------------------------


async def test_html_mode_serves_index_pages_and_the_404_page(public: Path) -> None:
    app = mounted(public, html=True)
    assert (await get(app, "/static/")).body == b"<h1>home</h1>"
    assert (await get(app, "/static/docs/")).body == b"<h1>docs</h1>"
    moved = await call(app, "/static/docs", query=b"v=2")
    assert (moved.status, moved.headers["location"]) == (307, "/static/docs/?v=2")
    lost = await get(app, "/static/nothing-here")
    assert (lost.status, lost.body) == (404, b"<h1>lost</h1>")
    assert (await get(app, "/static/empty/")).status == 404


async def test_without_html_mode_a_folder_is_404(public: Path) -> None:
    answer = await get(mounted(public), "/static/docs/")
    assert answer.status == 404
    assert answer.body == b'{"detail":"Not Found"}'


async def test_the_folder_redirect_never_leaves_the_origin(public: Path) -> None:
    # Mounted at the root, "//docs" would otherwise redirect to "//docs/": a host.
    app = App()
    app.mount("/", StaticFiles(directory=public, html=True))
    answer = await get(app, "//docs")
    assert answer.status == 404
    assert "location" not in answer.headers


# --- never outside the folder --------------------------------------------------------

ESCAPES = [
    "/static/../secret.txt",
    "/static/docs/../../secret.txt",
    "/static/..\\secret.txt",
    "/static/docs/..\\..\\secret.txt",
    "/static/" + str(Path("/etc/passwd")),
    "/static//etc/passwd",
    "/static/a.txt\x00.png",
    "/static/\x00",
    "/static/link-out.txt",
    "/static/dir-out/secret.txt",
    "/static/" + "x" * 5000,
]


@pytest.mark.parametrize("path", ESCAPES)
@pytest.mark.parametrize("html", [False, True])
async def test_no_path_reaches_outside_the_folder(public: Path, path: str, html: bool) -> None:
    answer = await get(mounted(public, html=html), path)
    assert answer.status == 404
    assert SECRET not in answer.body
    assert answer.body == (b"<h1>lost</h1>" if html else b'{"detail":"Not Found"}')


@pytest.mark.parametrize(
    "target",
    [
        b"/static/../secret.txt",
        b"/static/%2e%2e%2fsecret.txt",
        b"/static/%2E%2E/secret.txt",
        b"/static/..%5csecret.txt",
        b"/static/..%5Csecret.txt",
        b"/static/%2e%2e%5c%2e%2e%5csecret.txt",
        b"/static/a.txt%00.png",
        b"/static/%2fetc%2fpasswd",
        b"/static/link-out.txt",
    ],
)
async def test_raw_requests_through_the_server_stay_inside(public: Path, target: bytes) -> None:
    async with serving(mounted(public)) as port:
        answer = await exchange(port, target)
    assert answer.status == 404, target
    assert SECRET not in answer.body


async def test_double_encoding_is_not_decoded_twice(public: Path) -> None:
    # "%252e%252e%252f" reaches the app as the literal name "%2e%2e%2f": no such file.
    (public / "%2e%2e%2fsecret.txt").write_text("a file with an odd name")
    async with serving(mounted(public)) as port:
        answer = await exchange(port, b"/static/%252e%252e%252fsecret.txt")
    assert (answer.status, answer.body) == (200, b"a file with an odd name")


async def test_links_inside_the_folder_are_served(public: Path) -> None:
    assert (await get(mounted(public), "/static/link-in.txt")).body == b"hello"


async def test_follow_symlink_serves_links_that_lead_out(public: Path) -> None:
    app = mounted(public, follow_symlink=True)
    assert (await get(app, "/static/link-out.txt")).body == SECRET
    assert (await get(app, "/static/../secret.txt")).status == 404


# --- configuration and embedding -------------------------------------------------------


async def test_check_dir(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="does not exist"):
        StaticFiles(directory=tmp_path / "later")
    static = StaticFiles(directory=tmp_path / "later", check_dir=False)
    (tmp_path / "later").mkdir()
    (tmp_path / "later" / "a.txt").write_text("made later")
    assert (await call(static, "/a.txt")).body == b"made later"


async def test_served_on_its_own_it_answers_its_errors(public: Path) -> None:
    static = StaticFiles(directory=public)
    assert (await call(static, "/a.txt")).body == b"hello"
    for path in ("/missing", "/../secret.txt", "/a.txt\x00"):
        answer = await call(static, path)
        assert (answer.status, answer.body) == (404, b'{"detail":"Not Found"}')
    assert (await call(static, "/a.txt", method="DELETE")).status == 405


async def test_the_apps_404_handler_answers_for_it(public: Path) -> None:
    app = mounted(public)

    @app.exception_handler(404)
    async def not_found(request: Request, exc: HTTPException) -> Response:
        return JSONResponse({"missing": request.url.path}, status_code=404)

    answer = await get(app, "/static/../secret.txt")
    assert (answer.status, answer.body) == (404, b'{"missing":"/static/../secret.txt"}')


def test_the_symlink_fixture_really_points_out(public: Path) -> None:
    # Guards the escape tests: the links exist and lead to the secret.
    assert Path(os.path.realpath(public / "link-out.txt")).read_bytes() == SECRET


async def test_ranges_past_the_end_are_dropped_not_refused(public: Path) -> None:
    # RFC 9110 section 14.1.1; Starlette answers 416 for the whole set.
    answer = await get(mounted(public), "/static/data.bin", range="bytes=0-1, 500-600")
    assert (answer.status, answer.body) == (206, bytes([0, 1]))
    assert answer.headers["content-range"] == "bytes 0-1/100"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
async def test_an_unreadable_file_is_404(public: Path) -> None:
    (public / "a.txt").chmod(0)
    assert (await get(mounted(public), "/static/a.txt")).status == 404


async def test_range_abuse_is_bounded(public: Path) -> None:
    app = mounted(public)
    # Overlapping ranges are merged: each byte is read and sent once.
    overlapping = await get(app, "/static/data.bin", range="bytes=0-5, 2-8, 4-6")
    assert (overlapping.status, overlapping.body) == (206, bytes(range(9)))
    # More than 100 parts: the header is ignored and the file sent once, whole.
    many = ",".join(f"{n}-{n}" for n in range(0, 202, 2))
    flood = await get(app, "/static/data.bin", range=f"bytes={many}")
    assert (flood.status, flood.body) == (200, bytes(range(100)))
    fifty = ",".join(f"{n}-{n}" for n in range(0, 100, 2))
    assert (await get(app, "/static/data.bin", range=f"bytes={fifty}")).status == 206


async def test_huge_range_positions_are_ignored_not_a_500(public: Path) -> None:
    app = mounted(public)
    for value in (f"bytes={'9' * 5000}-", f"bytes=0-{'9' * 5000}", f"bytes=-{'9' * 30}"):
        answer = await get(app, "/static/data.bin", range=value)
        assert (answer.status, answer.body) == (200, bytes(range(100)))
    assert (await get(app, "/static/data.bin", range="bytes=-9999999999")).status == 206


@pytest.mark.parametrize(
    "value",
    [
        "",
        "0",
        "Fri, 31 Feb 2100 00:00:00 GMT",
        "Fri, 01 Jan 99999999999 00:00:00 GMT",
        "Fri, 01 Jan 2100 25:00:00 +9999",
        "Fri, 01 Jan 2100 00:00:00 -0000",
    ],
)
async def test_an_invalid_if_modified_since_is_ignored(public: Path, value: str) -> None:
    answer = await get(mounted(public), "/static/a.txt", if_modified_since=value)
    assert (answer.status, answer.body) == (200, b"hello")
