"""Forms: ``request.form()`` for urlencoded and multipart bodies, ``UploadFile``,
``Form()``/``File()`` injection, limits, and bad input answered 4xx, never 500."""

import importlib
import io
from typing import IO, Annotated, Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import asgi_bg
from asgi_bg import (
    App,
    Body,
    ConfigurationError,
    File,
    Form,
    Request,
    UploadFile,
    WebSocket,
)
from asgi_bg._types import Message
from asgi_bg.testing import TestClient
from asgi_bg.uploads import SPOOL_MAX_SIZE, FormData


def echo_app(**limits: int) -> App:
    app = App()

    @app.post("/")
    async def echo(request: Request) -> dict[str, Any]:
        form = await request.form(**limits)
        return {key: [describe(v) for v in form.getlist(key)] for key in form}

    return app


def describe(value: str | UploadFile) -> Any:
    if isinstance(value, str):
        return value
    return {
        "filename": value.filename,
        "content_type": value.content_type,
        "size": value.size,
        "on_disk": bool(getattr(value.file, "_rolled", True)),
    } | ({"header": value.headers["x-part"]} if "x-part" in value.headers else {})


def test_urlencoded_fields_keep_every_value_in_order(anyio_backend: str) -> None:
    client = TestClient(echo_app(), backend=anyio_backend)
    response = client.post("/", content=b"a=1&b=x+y&a=%C3%A9&empty=", headers=urlencoded())
    assert response.json() == {"a": ["1", "é"], "b": ["x y"], "empty": [""]}


def urlencoded() -> dict[str, str]:
    return {"content-type": "application/x-www-form-urlencoded"}


def test_multipart_fields_and_files(anyio_backend: str) -> None:
    client = TestClient(echo_app(), backend=anyio_backend)
    big = b"x" * (SPOOL_MAX_SIZE + 1)
    response = client.post(
        "/",
        data={"name": ["ada", "grace"]},
        files=[
            ("doc", ("a.txt", b"small", "text/plain")),
            ("doc", ("b.bin", big, "application/octet-stream")),
        ],
    )
    assert response.json() == {
        "name": ["ada", "grace"],
        "doc": [
            {"filename": "a.txt", "content_type": "text/plain", "size": 5, "on_disk": False},
            {
                "filename": "b.bin",
                "content_type": "application/octet-stream",
                "size": len(big),
                "on_disk": True,  # past the spool limit
            },
        ],
    }


def test_a_part_keeps_its_own_headers(anyio_backend: str) -> None:
    body = (
        b"--B\r\n"
        b'Content-Disposition: form-data; name="f"; filename="r\xc3\xa9.txt"\r\n'
        b"Content-Type: text/plain\r\nX-Part: yes\r\n\r\n"
        b"data\r\n--B--\r\n"
    )
    client = TestClient(echo_app(), backend=anyio_backend)
    response = client.post("/", content=body, headers=boundary("B"))
    (upload,) = response.json()["f"]
    assert (upload["filename"], upload["header"], upload["size"]) == ("ré.txt", "yes", 4)


def boundary(value: str) -> dict[str, str]:
    return {"content-type": f"multipart/form-data; boundary={value}"}


def test_another_content_type_gives_an_empty_form(anyio_backend: str) -> None:
    response = TestClient(echo_app(), backend=anyio_backend).post("/", json={"a": 1})
    assert response.json() == {}


@pytest.mark.anyio
async def test_upload_file_reads_writes_and_seeks() -> None:
    upload = UploadFile(io.BytesIO(), size=0, filename="x")
    await upload.write(b"hello")
    await upload.seek(0)
    assert (await upload.read(), upload.size) == (b"hello", 5)
    await upload.close()
    assert upload.file.closed


def test_form_data_is_a_multi_valued_mapping() -> None:
    form = FormData([("a", "1"), ("b", "2"), ("a", "3")])
    assert (form["a"], form.getlist("a"), len(form), list(form)) == ("3", ["1", "3"], 2, ["a", "b"])
    assert form.multi_items() == [("a", "1"), ("b", "2"), ("a", "3")]


# --- limits and malformed bodies --------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "fields", "files", "detail"),
    [
        ({"max_files": 1}, [], 2, "Too many files: the limit is 1"),
        ({"max_fields": 2}, ["1", "2", "3"], 1, "Too many fields: the limit is 2"),
        ({"max_part_size": 10}, ["x" * 11], 1, "A form field is over the limit of 10 bytes"),
    ],
    ids=["files", "fields", "part"],
)
def test_a_form_over_a_limit_is_413_and_its_files_are_closed(
    anyio_backend: str,
    spooled: list[IO[bytes]],
    limits: dict[str, int],
    fields: list[str],
    files: int,
    detail: str,
) -> None:
    client = TestClient(echo_app(**limits), backend=anyio_backend)
    big = b"y" * (SPOOL_MAX_SIZE + 1)  # on disk
    # The files come first, so the limit is hit with a file on disk already.
    parts: list[Any] = [("f", (f"{i}.bin", big)) for i in range(files)]
    parts += [("a", (None, value.encode())) for value in fields]
    response = client.post("/", files=parts)
    assert (response.status_code, response.json()) == (413, {"detail": detail})
    assert spooled
    assert all(file.closed for file in spooled)


def test_an_urlencoded_form_over_a_limit_is_413(anyio_backend: str) -> None:
    client = TestClient(echo_app(max_fields=2, max_part_size=5), backend=anyio_backend)
    too_many = client.post("/", content=b"a=1&b=2&c=3", headers=urlencoded())
    too_big = client.post("/", content=b"abc=defgh", headers=urlencoded())
    assert (too_many.status_code, too_big.status_code) == (413, 413)


@pytest.mark.parametrize(
    ("content_type", "body", "detail"),
    [
        ("multipart/form-data", b"--B--\r\n", "no boundary in content-type"),
        ("multipart/form-data; boundary=B", b"--B\r\nbroken", "ends before its last boundary"),
        (
            "multipart/form-data; boundary=B",
            b'--B\r\nContent-Disposition: form-data; filename="a"\r\n\r\nx\r\n--B--\r\n',
            "a part has no field name",
        ),
        ("multipart/form-data; boundary=B", b"garbage", "Malformed multipart body"),
    ],
    ids=["no-boundary", "truncated", "no-name", "garbage"],
)
def test_a_malformed_multipart_body_is_400(
    anyio_backend: str, content_type: str, body: bytes, detail: str
) -> None:
    client = TestClient(echo_app(), backend=anyio_backend)
    response = client.post("/", content=body, headers={"content-type": content_type})
    assert response.status_code == 400
    assert detail in response.json()["detail"]


def test_arbitrary_multipart_bodies_are_answered_4xx_never_500() -> None:
    app = App()

    @app.post("/")
    async def handler(
        name: Annotated[str, Form()], file: Annotated[UploadFile | None, File()] = None
    ) -> str:
        return name

    client = TestClient(app, raise_server_exceptions=False)
    statuses: set[int] = set()
    prefix = st.sampled_from(
        [b"", b"--B\r\n", b'--B\r\nContent-Disposition: form-data; name="name"\r\n\r\n']
    )

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(prefix=prefix, tail=st.binary(max_size=200), end=st.sampled_from([b"", b"\r\n--B--"]))
    def check(prefix: bytes, tail: bytes, end: bytes) -> None:
        response = client.post("/", content=prefix + tail + end, headers=boundary("B"))
        assert response.status_code in (200, 400, 413, 422), response.text
        statuses.add(response.status_code)
        if response.status_code != 200:
            assert "detail" in response.json()

    check()
    assert {400, 422} <= statuses


# --- injection --------------------------------------------------------------------------


def form_app() -> App:
    app = App()

    @app.post("/profile")
    async def profile(
        name: Annotated[str, Form()],
        age: Annotated[int, Form()],
        tags: Annotated[list[str], Form()],
        nick: Annotated[str, Form(alias="nick-name")] = "none",
    ) -> dict[str, Any]:
        return {"name": name, "age": age, "tags": tags, "nick": nick}

    @app.post("/files")
    async def files(
        main: UploadFile,
        extra: Annotated[list[UploadFile], File()],
        raw: Annotated[bytes, File()],
        optional: Annotated[UploadFile | None, File()] = None,
    ) -> dict[str, Any]:
        return {
            "main": (await main.read()).decode(),
            "extra": [e.filename for e in extra],
            "raw": raw.decode(),
            "optional": optional.filename if optional else None,
        }

    return app


def test_form_fields_convert_like_query_parameters(anyio_backend: str) -> None:
    client = TestClient(form_app(), backend=anyio_backend)
    data = {"name": "ada", "age": "36", "tags": ["a", "b"], "nick-name": "countess"}
    response = client.post("/profile", data=data)
    assert response.json() == {"name": "ada", "age": 36, "tags": ["a", "b"], "nick": "countess"}

    bad = client.post("/profile", data={"age": "old", "tags": "x"})
    assert bad.status_code == 422
    assert [(e["loc"], e["type"]) for e in bad.json()["detail"]] == [
        (["body", "name"], "missing"),
        (["body", "age"], "int_parsing"),
    ]


def test_file_parameters(anyio_backend: str) -> None:
    client = TestClient(form_app(), backend=anyio_backend)
    files = [
        ("main", ("m.txt", b"main text")),
        ("extra", ("1.txt", b"1")),
        ("extra", ("2.txt", b"2")),
        ("raw", ("r.txt", b"raw bytes")),
    ]
    response = client.post("/files", files=files)
    assert response.json() == {
        "main": "main text",
        "extra": ["1.txt", "2.txt"],
        "raw": "raw bytes",
        "optional": None,
    }

    missing = client.post("/files", files=[("main", ("m.txt", b"x"))], data={"raw": "text"})
    assert [(e["loc"], e["type"]) for e in missing.json()["detail"]] == [
        (["body", "extra"], "missing"),
        (["body", "raw"], "value_error"),
    ]


def test_form_and_file_markers_are_exported() -> None:
    assert (asgi_bg.Form, asgi_bg.File, asgi_bg.UploadFile) == (Form, File, UploadFile)


def test_a_json_body_and_a_form_in_one_handler_are_refused() -> None:
    app = App()
    with pytest.raises(ConfigurationError, match="JSON or a form, not both"):

        @app.post("/")
        async def handler(a: Annotated[str, Form()], b: Annotated[int, Body()]) -> None: ...


def test_file_on_a_text_parameter_is_refused() -> None:
    app = App()
    with pytest.raises(ConfigurationError, match=r"File\(\) takes UploadFile"):

        @app.post("/")
        async def handler(a: Annotated[str, File()]) -> None: ...


def test_without_python_multipart_registration_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.import_module

    def missing(name: str, package: str | None = None) -> Any:
        if name == "python_multipart":
            raise ImportError(name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", missing)
    app = App()
    with pytest.raises(ConfigurationError, match=r"route POST /.*asgi_bg\[forms\]"):

        @app.post("/")
        async def handler(file: UploadFile) -> None: ...


@pytest.mark.anyio
async def test_a_request_cancelled_while_its_form_is_read_leaves_no_file_open(
    spooled: list[IO[bytes]],
) -> None:
    head = b'--B\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\n'
    pending: list[Message] = [
        {"type": "http.request", "body": head + b"x" * (SPOOL_MAX_SIZE + 1), "more_body": True}
    ]
    waiting = anyio.Event()

    async def receive() -> Message:
        if pending:
            return pending.pop()
        waiting.set()  # the rest of the body never comes
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        raise AssertionError("nothing is answered: the request is cancelled")

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"multipart/form-data; boundary=B")],
    }
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(echo_app(), scope, receive, send)
            await waiting.wait()
            assert [file.closed for file in spooled] == [False]
            group.cancel_scope.cancel()
    assert [file.closed for file in spooled] == [True]


def test_a_websocket_route_cannot_declare_form_fields() -> None:
    app = App()
    with pytest.raises(ConfigurationError, match="a WebSocket has no request body"):

        @app.websocket("/ws")
        async def chat(websocket: WebSocket, name: Annotated[str, Form()]) -> None: ...


def test_the_openapi_document_describes_form_and_file_fields() -> None:
    document = form_app().openapi()
    paths = document["paths"]
    profile = paths["/profile"]["post"]["requestBody"]["content"]
    files = paths["/files"]["post"]["requestBody"]["content"]
    assert (list(profile), list(files)) == (
        ["application/x-www-form-urlencoded"],
        ["multipart/form-data"],
    )
    schemas = document["components"]["schemas"]
    (files_schema,) = [s for name, s in schemas.items() if name.startswith("Body_files")]
    assert files_schema["properties"]["extra"]["items"] == {"type": "string", "format": "binary"}
    assert set(files_schema["required"]) == {"main", "extra", "raw"}


def test_form_fields_take_the_checks_query_parameters_take(anyio_backend: str) -> None:
    app = App()

    @app.post("/")
    async def handler(
        age: Annotated[int, Form(ge=1)], code: Annotated[str, Form(max_length=3)]
    ) -> list[Any]:
        return [age, code]

    client = TestClient(app, backend=anyio_backend)
    assert client.post("/", data={"age": "2", "code": "abc"}).json() == [2, "abc"]
    bad = client.post("/", data={"age": "0", "code": "abcd"})
    assert [(e["loc"], e["type"]) for e in bad.json()["detail"]] == [
        (["body", "age"], "greater_than_equal"),
        (["body", "code"], "string_too_long"),
    ]
