"""The public surface: ``asgi_bg.__all__`` stays honest, and importing it stays light."""

import json
import subprocess
import sys

import pytest

import asgi_bg
import asgi_bg.testing

# The names API.md promises under "Imports" (plus the exceptions users catch).
CONTRACT = {
    "App",
    "Router",
    "Depends",
    "Query",
    "Header",
    "Cookie",
    "Body",
    "Request",
    "BackgroundTasks",
    "BackgroundTask",
    "HTTPException",
    "Response",
    "PlainTextResponse",
    "HTMLResponse",
    "JSONResponse",
    "RedirectResponse",
    "StreamingResponse",
    "FileResponse",
    "ConfigurationError",
    "RequestValidationError",
    "run",
}


def test_all_is_sorted_and_unique() -> None:
    assert asgi_bg.__all__ == sorted(set(asgi_bg.__all__))


def test_every_name_in_all_is_importable() -> None:
    namespace: dict[str, object] = {}
    exec("from asgi_bg import *", namespace)
    for name in asgi_bg.__all__:
        assert namespace[name] is getattr(asgi_bg, name)


def test_the_contract_names_are_all_exported() -> None:
    assert sorted(CONTRACT - set(asgi_bg.__all__)) == []


def test_every_public_module_level_name_is_in_all() -> None:
    public = {
        name
        for name, value in vars(asgi_bg).items()
        if not name.startswith("_") and not isinstance(value, type(sys))
    }
    assert sorted(public - set(asgi_bg.__all__)) == []


def test_the_test_clients_answer_from_the_app() -> None:
    client = asgi_bg.testing.TestClient(asgi_bg.App())
    assert client.get("/nowhere").status_code == 404


@pytest.mark.anyio
async def test_the_async_test_client_answers_from_the_app(anyio_backend: str) -> None:
    async with asgi_bg.testing.AsyncTestClient(asgi_bg.App()) as client:
        assert (await client.get("/nowhere")).status_code == 404


def new_modules(code: str) -> set[str]:
    """Modules that ``code`` loads in a fresh interpreter, beyond its start-up (site hooks)."""
    script = (
        "import sys, json\n"
        "before = set(sys.modules)\n"
        f"{code}\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stdout))


def root(module: str) -> str:
    return module.partition(".")[0]


def test_importing_asgi_bg_loads_only_anyio_h11_and_the_stdlib() -> None:
    loaded = new_modules("import asgi_bg")
    assert "asgi_bg.applications" in loaded
    ours = {"asgi_bg", "anyio", "h11"}
    foreign = {m for m in loaded if root(m) not in sys.stdlib_module_names | ours}
    # What remains must be anyio's own dependencies: loaded by the same anyio modules alone.
    anyio_modules = sorted(m for m in loaded if root(m) == "anyio")
    by_anyio = new_modules("\n".join(f"import {m}" for m in anyio_modules))
    assert sorted(foreign - by_anyio) == []
