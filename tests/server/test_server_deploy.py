"""Deployment flags, each against the real server in a subprocess: the event loop,
sockets, proxy headers, TLS, extra headers, request limits, env and log files."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import trustme
from cli_support import HERE, cli, spawned

pytestmark = pytest.mark.anyio


async def get_json(url: str, **client_options: Any) -> Any:
    headers = client_options.pop("headers", {})
    async with httpx.AsyncClient(**client_options) as client:
        reply = await client.get(url, headers=headers)
    assert reply.status_code == 200
    return reply.json()


@pytest.mark.parametrize("loop", ["uvloop", "asyncio", "auto"])
async def test_event_loop_choice_serves(loop: str) -> None:
    async with cli("deploy_apps:app", "--port", "0", "--loop", loop, backend="asyncio") as server:
        port = await server.port()
        body = await get_json(f"http://127.0.0.1:{port}/")
        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_code() == 0
    assert body["loop"].partition(".")[0] == ("asyncio" if loop == "asyncio" else "uvloop")


async def test_run_works_when_the_caller_installed_uvloop() -> None:
    code = (
        "import uvloop; uvloop.install(); "
        "from asgi_bg.server import run; from deploy_apps import app; "
        "run(app, port=0)"
    )
    async with spawned([sys.executable, "-c", code]) as server:
        port = await server.port()
        body = await get_json(f"http://127.0.0.1:{port}/")
        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_code() == 0
    assert body["loop"].startswith("uvloop")


async def test_unix_socket(anyio_backend: str, tmp_path: Path) -> None:
    path = str(tmp_path / "app.sock")
    async with cli("deploy_apps:app", "--uds", path, backend=anyio_backend) as server:
        await server.wait_for(f"serving on unix:{path}")
        transport = httpx.AsyncHTTPTransport(uds=path)
        body = await get_json("http://localhost/", transport=transport)
        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_code() == 0
    assert body["client"] is None


async def test_inherited_socket(anyio_backend: str) -> None:
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    command = [sys.executable, "-m", "asgi_bg", "deploy_apps:app", "--fd", str(sock.fileno())]
    command += ["--backend", anyio_backend]
    async with await anyio.open_process(command, cwd=HERE, pass_fds=(sock.fileno(),)) as process:
        sock.close()  # the server holds the only copy now
        try:
            # The socket already listens: the request waits in the backlog until the
            # server accepts, so no polling is needed.
            body = await get_json(f"http://127.0.0.1:{port}/", timeout=10)
        finally:
            process.send_signal(signal.SIGTERM)
            await process.wait()
    assert body["pid"] == process.pid


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to read a backlog")
async def test_backlog(anyio_backend: str) -> None:
    async with cli(
        "deploy_apps:app", "--port", "0", "--backlog", "7", backend=anyio_backend
    ) as server:
        port = await server.port()
        listing = await anyio.run_process(["ss", "-ltnH", f"sport = :{port}"])
        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_code() == 0
    assert listing.stdout.split()[2] == b"7"  # Send-Q of a listening socket: its backlog


# A client at .9 behind a proxy at .7, which our trusted proxy (the test) reached.
FORWARDED = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7", "X-Forwarded-Proto": "https"}


@pytest.mark.parametrize(
    ("allow", "expected_client", "expected_scheme"),
    [
        # The default trusts 127.0.0.1 (the test): the nearest untrusted hop is the client.
        ([], "198.51.100.7", "https"),
        (["--forwarded-allow-ips", "*"], "203.0.113.9", "https"),  # every hop trusted
        (["--forwarded-allow-ips", "10.0.0.0/8"], "127.0.0.1", "http"),  # untrusted peer
    ],
)
async def test_proxy_headers_from_trusted_and_untrusted_peers(
    anyio_backend: str, allow: list[str], expected_client: str, expected_scheme: str
) -> None:
    args = ["deploy_apps:app", "--port", "0", "--proxy-headers", *allow]
    async with cli(*args, backend=anyio_backend) as server:
        port = await server.port()
        body = await get_json(f"http://127.0.0.1:{port}/", headers=FORWARDED)
        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_code() == 0
    assert (body["client"][0], body["scheme"]) == (expected_client, expected_scheme)


async def test_proxy_headers_are_ignored_unless_asked(anyio_backend: str) -> None:
    async with cli("deploy_apps:app", "--port", "0", backend=anyio_backend) as server:
        port = await server.port()
        body = await get_json(f"http://127.0.0.1:{port}/", headers=FORWARDED)
        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_code() == 0
    assert (body["client"][0], body["scheme"]) == ("127.0.0.1", "http")


async def test_tls(anyio_backend: str, tmp_path: Path) -> None:
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1")
    key_file, cert_file = tmp_path / "key.pem", tmp_path / "cert.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    args = ["deploy_apps:app", "--port", "0", "--ssl-keyfile", str(key_file)]
    args += ["--ssl-certfile", str(cert_file)]
    async with cli(*args, backend=anyio_backend) as server:
        match = await server.wait_for(r"serving on (https?)://127\.0\.0\.1:(\d+)")
        client_context = ssl.create_default_context()
        authority.configure_trust(client_context)
        body = await get_json(f"https://127.0.0.1:{match.group(2)}/", verify=client_context)
        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_code() == 0
    assert (match.group(1), body["scheme"]) == ("https", "https")


async def test_extra_response_headers(anyio_backend: str) -> None:
    args = ["deploy_apps:app", "--port", "0", "--header", "X-Frame-Options: DENY"]
    async with cli(*args, "--header", "x-team:core", backend=anyio_backend) as server:
        port = await server.port()
        async with httpx.AsyncClient() as client:
            reply = await client.get(f"http://127.0.0.1:{port}/")
        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_code() == 0
    assert (reply.headers["x-frame-options"], reply.headers["x-team"]) == ("DENY", "core")


async def test_limit_max_requests_stops_the_process(anyio_backend: str) -> None:
    args = ["deploy_apps:app", "--port", "0", "--limit-max-requests", "2"]
    async with cli(*args, backend=anyio_backend) as server:
        port = await server.port()
        for _ in range(2):
            await get_json(f"http://127.0.0.1:{port}/")
        assert await server.exit_code() == 0
    assert "Maximum request limit of 2 reached" in server.output


async def test_env_file_log_config_factory_and_no_access_log(
    anyio_backend: str, tmp_path: Path
) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text("# settings\nexport DEPLOY_TEST_VALUE='from the env file'\n")
    log_config = tmp_path / "logging.json"
    log_config.write_text(json.dumps(LOG_CONFIG))
    args = ["deploy_apps:make_app", "--factory", "--port", "0", "--env-file", str(env_file)]
    args += ["--log-config", str(log_config), "--no-access-log"]
    async with cli(*args, backend=anyio_backend) as server:
        port = int((await server.wait_for(r"JSONLOG .*serving on http://\S+:(\d+)")).group(1))
        body = await get_json(f"http://127.0.0.1:{port}/")
        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_code() == 0
    assert body["env"] == "from the env file"
    assert "GET / HTTP/1.1" not in server.output


LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "JSONLOG %(levelname)s %(message)s"}},
    "handlers": {"err": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["err"], "level": "INFO"},
}
