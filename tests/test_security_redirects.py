"""Issue 11 finding 1: a redirect asgi_bg builds never leaves the origin.

The trailing-slash redirect echoes the request path. A path that starts with two
slashes (``//evil.com/edit/``, or ``/%2Fevil.com/edit/`` once decoded) would become
``Location: //evil.com/edit``, which a browser reads as another host.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from raw_http import call, exchange, serving

from asgi_bg import App, StaticFiles

pytestmark = pytest.mark.anyio


# A folder for StaticFiles' own redirect (a folder asked for without its slash); made
# once, since hypothesis calls the test hundreds of times.
_FOLDER = tempfile.TemporaryDirectory()
(Path(_FOLDER.name) / "docs").mkdir()
(Path(_FOLDER.name) / "docs" / "index.html").write_text("<p>docs</p>")


def edit_app() -> App:
    app = App()
    app.mount("/files", StaticFiles(directory=_FOLDER.name, html=True))

    @app.get("/{page:path}/edit")
    async def edit(page: str) -> dict[str, str]:
        return {"page": page}

    @app.get("/items/")
    async def items() -> list[str]:
        return []

    @app.get("/users/{name}")
    async def user(name: str) -> str:
        return name

    return app


def assert_same_origin(location: str) -> None:
    """What a browser resolves ``location`` against stays on the page's own origin."""
    assert location.startswith("/"), location
    assert not location.startswith(("//", "/\\")), location
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc) == ("", ""), location
    # Browsers drop tabs and newlines from URLs and read a backslash as a slash, so
    # none of them may appear raw; everything outside printable ASCII is escaped.
    assert all(33 <= ord(c) < 127 and c != "\\" for c in location), location


@pytest.mark.parametrize(
    "path", ["//evil.com/edit/", "///evil.com/edit/", "//evil.com/edit", "/\\evil.com/edit/"]
)
async def test_a_network_path_is_never_a_redirect_target(path: str) -> None:
    answer = await call(edit_app(), path)
    location = answer.headers.get("location")
    if location is not None:
        assert_same_origin(location)
    else:
        assert answer.status in (200, 404)


async def test_double_slash_paths_answer_404_through_the_server() -> None:
    # The finding as reported: raw request lines through the embedded server.
    async with serving(edit_app()) as port:
        for target in (b"//evil.com/edit/", b"/%2Fevil.com/edit/", b"///evil.com/edit/"):
            answer = await exchange(port, target)
            assert answer.status == 404, target
            assert "location" not in answer.headers


async def test_ordinary_trailing_slash_redirects_still_work() -> None:
    app = edit_app()
    assert (await call(app, "/files/docs")).headers["location"] == "/files/docs/"
    assert (await call(app, "/files//docs")).headers["location"] == "/files//docs/"
    answer = await call(app, "/docs/edit/", query=b"v=1&w=a%20b")
    assert (answer.status, answer.headers["location"]) == (307, "/docs/edit?v=1&w=a%20b")
    assert (await call(app, "/items")).headers["location"] == "/items/"
    mounted = await call(app, "/items", root_path="/api")
    assert mounted.headers["location"] == "/api/items/"


async def test_the_location_is_the_path_the_client_asked_for() -> None:
    # The decoded path is encoded again: a "?" or "%" that was part of the path stays
    # part of the path, so the client lands on the resource it asked for.
    app = edit_app()
    answer = await call(app, "/users/a?b%41/")
    assert answer.headers["location"] == "/users/a%3Fb%2541"
    followed = await call(app, "/users/a?b%41")
    assert followed.body == b'"a?b%41"'


# Paths built to reach the redirect code: a start a browser may read as another host,
# arbitrary segments, and an end that names a route with or without its slash.
_START = st.sampled_from(
    ["/", "//", "///", "/\\", "/\\/", "/\t/", "/./", "/files/", "/files//", "/files/\\"]
)
_SEGMENTS = st.lists(
    st.one_of(
        st.sampled_from(["", "evil.com", "%2F", "\\", "\n"]),
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8),
    ),
    max_size=3,
).map("/".join)
_END = st.sampled_from(
    ["", "/edit", "/edit/", "/items", "/users/x/", "edit/", "items", "docs", "/docs"]
)
_PATH = st.builds(lambda start, middle, end: start + middle + end, _START, _SEGMENTS, _END)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=_PATH,
    query=st.binary(max_size=12).filter(lambda q: b"\x00" not in q),
    root_path=st.sampled_from(["", "/api"]),
)
async def test_no_redirect_leaves_the_origin(path: str, query: bytes, root_path: str) -> None:
    answer = await call(edit_app(), path, query=query, root_path=root_path)
    if 300 <= answer.status < 400:
        assert_same_origin(answer.headers["location"])
