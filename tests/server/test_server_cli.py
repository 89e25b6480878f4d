"""`python -m asgi_bg` in a subprocess: startup, signals, exit codes.

The served process runs on the same anyio backend as the test.
"""

from __future__ import annotations

import signal
import sys
import typing
from dataclasses import fields
from pathlib import Path

import anyio
import pytest
from cli_support import ServerProcess, cli, spawned
from server_support import ScriptedClient

from asgi_bg.server.cli import build_parser, main
from asgi_bg.server.config import ProcessConfig, ServerConfig, ServerOptions, option_info
from asgi_bg.server.loading import AppNotFound, load_app

pytestmark = pytest.mark.anyio


async def connect_and_wait(server: ServerProcess) -> ScriptedClient:
    port = int((await server.wait_for(r"serving on http://127\.0\.0\.1:(\d+)")).group(1))
    client = ScriptedClient(await anyio.connect_tcp("127.0.0.1", port))
    await client.send(b"POST /wait-for-body HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n")
    await server.wait_for("MARK waiting for the body")
    return client


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_shuts_down_gracefully(anyio_backend: str, signum: signal.Signals) -> None:
    async with cli("server_apps:app", "--port", "0", backend=anyio_backend) as server:
        client = await connect_and_wait(server)
        server.process.send_signal(signum)
        await server.wait_for("waiting for 1 connection")
        await client.send(b"abc")  # the in-flight request may still finish
        reply = await client.response(method=b"POST")
        assert (reply.status, reply.body) == (200, b"got abc")
        assert reply.headers[b"connection"] == b"close"
        await client.stream.aclose()
        assert await server.exit_code() == 0
    assert "MARK lifespan shutdown" in server.output


async def test_second_signal_forces_exit(anyio_backend: str) -> None:
    async with cli("server_apps:app", "--port", "0", backend=anyio_backend) as server:
        client = await connect_and_wait(server)
        server.process.send_signal(signal.SIGINT)
        await server.wait_for("shutting down gracefully")
        server.process.send_signal(signal.SIGINT)
        assert await server.exit_code() == 1
        await client.stream.aclose()
    assert "forcing exit" in server.output


async def test_failed_startup_exits_with_3(anyio_backend: str) -> None:
    async with cli("server_apps:failing_startup", "--port", "0", backend=anyio_backend) as server:
        assert await server.exit_code() == 3
    assert "Application startup failed: no database" in server.output


async def test_logs_like_uvicorn_and_a_busy_port_is_one_line_and_status_1(
    anyio_backend: str,
) -> None:
    async with cli("server_apps:app", "--port", "0", backend=anyio_backend) as first:
        port = int((await first.wait_for(r"serving on http://127\.0\.0\.1:(\d+)")).group(1))
        async with cli("server_apps:app", "--port", str(port), backend=anyio_backend) as second:
            assert await second.exit_code() == 1
        first.process.send_signal(signal.SIGTERM)
        assert await first.exit_code() == 0
    assert second.output.strip().splitlines() == [
        f"ERROR:    [Errno 98] error while attempting to bind on address "
        f"('127.0.0.1', {port}): address already in use"
    ]
    lines = first.output.splitlines()
    for expected in (
        "INFO:     Started server process [",
        "INFO:     Waiting for application startup.",
        "INFO:     Application startup complete.",
        f"INFO:     asgi_bg serving on http://127.0.0.1:{port} (Press CTRL+C to quit)",
        "INFO:     Application shutdown complete.",
        "INFO:     Finished server process [",
    ):
        assert any(line.startswith(expected) for line in lines), expected


def test_uvicorn_option_names_are_accepted() -> None:
    args = build_parser().parse_args(
        ["m:app", "--timeout-keep-alive", "7", "--timeout-graceful-shutdown", "9"]
    )
    assert (args.keep_alive, args.shutdown_timeout) == (7.0, 9.0)


def test_unknown_app_is_reported() -> None:
    with pytest.raises(AppNotFound, match='Attribute "nope" not found in module "server_apps"'):
        load_app("server_apps:nope")
    with pytest.raises(AppNotFound, match='did you mean "server_apps:app"'):
        load_app("server_apps")


def test_options_default_like_serve() -> None:
    args = build_parser().parse_args(["m:app"])
    assert (args.host, args.port, args.max_body) == ("127.0.0.1", 8000, 4 * 1024 * 1024)


def test_slow_client_limits_default_like_serve_and_can_be_set() -> None:
    defaults = build_parser().parse_args(["m:app"])
    config = ServerConfig()
    assert (defaults.body_min_rate, defaults.body_rate_grace, defaults.send_timeout) == (
        config.body_min_rate,
        config.body_rate_grace,
        config.send_timeout,
    )
    args = build_parser().parse_args(
        ["m:app", "--body-min-rate", "0", "--body-rate-grace", "2", "--send-timeout", "9"]
    )
    assert (args.body_min_rate, args.body_rate_grace, args.send_timeout) == (0.0, 2.0, 9.0)
    with pytest.raises(ValueError, match="send_timeout must not be negative"):
        ServerConfig(send_timeout=-1)


async def test_run_from_python_serves_until_sigterm(anyio_backend: str) -> None:
    code = (
        "from asgi_bg.server import run; from server_apps import app; "
        f"run(app, port=0, backend={anyio_backend!r})"
    )
    async with spawned([sys.executable, "-c", code]) as server:
        client = await connect_and_wait(server)
        server.process.send_signal(signal.SIGTERM)
        await server.wait_for("waiting for 1 connection")
        await client.send(b"abc")
        assert (await client.response(method=b"POST")).body == b"got abc"
        await client.stream.aclose()
        assert await server.exit_code() == 0


async def test_help_shows_every_option_with_its_default_and_uvicorn_differences() -> None:
    command = [sys.executable, "-m", "asgi_bg", "--help"]
    result = await anyio.run_process(command)
    text = " ".join(result.stdout.decode().split())  # undo argparse's line wrapping
    for config in (ServerConfig, ProcessConfig):
        for field in fields(config):
            flag = (option_info(field).flags or ("--" + field.name.replace("_", "-"),))[0]
            assert flag in text, flag
    assert text.count("(default: ") == len(fields(ServerConfig)) + len(fields(ProcessConfig))
    assert "--backend {asyncio,trio} anyio backend [not a uvicorn option]" in text
    assert "[differs from uvicorn: uvicorn turns it on by default" in text


def test_server_options_mirror_the_config_fields() -> None:
    config_hints = typing.get_type_hints(ServerConfig)
    assert typing.get_type_hints(ServerOptions) == config_hints


async def test_version() -> None:
    result = await anyio.run_process([sys.executable, "-m", "asgi_bg", "--version"])
    assert result.stdout.decode().startswith("Running asgi_bg ")


async def test_an_app_raising_on_import_shows_its_traceback_and_exits_1(
    anyio_backend: str,
) -> None:
    async with cli("broken_app:app", backend=anyio_backend) as server:
        assert await server.exit_code() == 1
    assert 'broken_app.py", line 4, in <module>' in server.output
    assert "KeyError: 'DATABASE_URL'" in server.output


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module:app", 'Could not import module "no_such_module"'),
        ("deploy_apps:nope", 'Attribute "nope" not found in module "deploy_apps"'),
        ("examples/app.py", 'did you mean "examples.app:app"?'),
        ("examples.app", 'did you mean "examples.app:app"?'),
    ],
)
async def test_a_missing_app_is_one_line_and_exit_1(
    anyio_backend: str, target: str, message: str
) -> None:
    async with cli(target, backend=anyio_backend) as server:
        assert await server.exit_code() == 1
    lines = server.output.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("ERROR:    Error loading ASGI app. ")
    assert message in lines[0]


@pytest.mark.parametrize("page", ["README.md", "docs/server.md"])
def test_every_flag_is_documented(page: str) -> None:
    text = (Path(__file__).parents[2] / page).read_text()
    parser = build_parser()
    flags = {flag for action in parser._actions for flag in action.option_strings}
    # `--no-x` comes with every boolean `--x`: documenting `--x` is enough.
    wanted = {f for f in flags if not f.startswith("--no-")} - {"-h", "--help"}
    missing = sorted(f for f in wanted if f"`{f}" not in text)
    assert not missing, f"{page} lacks {missing}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "workers must be at least 1"),
        (["--uds", "a.sock", "--fd", "3"], "give uds or fd, not both"),
        (["--ssl-certfile", "missing.pem"], "TLS needs both ssl_keyfile and ssl_certfile"),
        (["--ssl-certfile", "no.pem", "--ssl-keyfile", "no.key"], "cannot load the TLS files"),
        (["--header", "no-colon"], "a header is NAME:VALUE"),
    ],
)
def test_bad_options_are_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["deploy_apps:app", *args])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
