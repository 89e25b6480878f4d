"""/docs in a real headless Chromium: every operation is listed, and "Try it out" works.

The app (``openapi_browser_app``: the shop, plus Swagger UI's files served locally) runs
in the embedded server on a loopback port; Chromium (Debian's ``chromium`` package,
installed by ``.ci/run``) loads ``/docs`` and is driven over the DevTools protocol with
a few lines of JSON over a WebSocket. The test waits on conditions evaluated in the page,
each with a generous bound: a loaded 2-core machine renders Swagger UI slowly.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LIMIT = 60.0
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=LIMIT)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def until(what: str, check: Any) -> Any:
    """Poll ``check`` until it returns a true value: a subprocess that is starting up has
    nothing to wait on but time."""
    deadline = time.monotonic() + LIMIT
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def stopped(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(LIMIT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(LIMIT)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    tests = str(Path(__file__).parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([tests, os.environ["PYTHONPATH"]]))
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "asgi_bg", "openapi_browser_app:app", "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:

            def serving() -> bool:
                assert process.poll() is None, (tmp_path / "server.log").read_text()
                try:
                    return get(port, "/openapi.json")[0] == 200
                except OSError:
                    return False

            until("the server", serving)
            yield port
        finally:
            stopped(process)


class Page:
    """One Chromium tab, driven with ``Runtime.evaluate`` over the DevTools protocol."""

    def __init__(self, websocket: ClientConnection) -> None:
        self.websocket = websocket
        self.last_id = 0

    def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` in the page; None while the page has none to give
        (a script error, or the document still being replaced by the one loading)."""
        self.last_id += 1
        params = {"expression": expression, "returnByValue": True}
        message = {"id": self.last_id, "method": "Runtime.evaluate", "params": params}
        self.websocket.send(json.dumps(message))
        while True:
            answer = json.loads(self.websocket.recv(LIMIT))
            if answer.get("id") == self.last_id:
                result = answer.get("result", {})
                if "exceptionDetails" in result:
                    return None
                return result.get("result", {}).get("value")

    def wait_for(self, condition: str) -> Any:
        """The value of the JavaScript expression ``condition`` once it is truthy."""
        return until(condition, lambda: self.evaluate(condition))


@pytest.fixture
def docs_page(server: int, tmp_path: Path) -> Iterator[Page]:
    assert CHROMIUM is not None
    profile = tmp_path / "profile"
    args = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--remote-debugging-port=0",
        f"http://127.0.0.1:{server}/docs",
    ]
    browser = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        active = profile / "DevToolsActivePort"
        until("Chromium's DevTools port", lambda: active.exists() and active.read_text().strip())
        devtools = int(active.read_text().split()[0])

        def docs_target() -> str | None:
            targets = json.loads(get(devtools, "/json/list")[1])
            pages = [t for t in targets if t["type"] == "page" and t["url"].endswith("/docs")]
            return pages[0]["webSocketDebuggerUrl"] if pages else None

        with connect(until("the docs tab", docs_target), max_size=None) as websocket:
            yield Page(websocket)
    finally:
        stopped(browser)


def test_docs_list_every_operation_and_try_it_out_answers(server: int, docs_page: Page) -> None:
    document = json.loads(get(server, "/openapi.json")[1])
    expected = sorted(
        f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item
    )
    listed = docs_page.wait_for(f"""(() => {{
        const ops = [...document.querySelectorAll('.opblock')].map(op =>
            op.querySelector('.opblock-summary-method').textContent + ' ' +
            op.querySelector('[data-path]').getAttribute('data-path'));
        return ops.length >= {len(expected)} && ops;
    }})()""")
    assert sorted(listed) == expected

    block = "#operations-default-greeting_greeting_get"
    docs_page.evaluate(f"document.querySelector('{block} .opblock-summary-path').click()")
    docs_page.wait_for(f"!!document.querySelector('{block} .try-out__btn')")
    docs_page.evaluate(f"document.querySelector('{block} .try-out__btn').click()")
    docs_page.wait_for(f"!!document.querySelector('{block} .execute')")
    docs_page.evaluate(f"document.querySelector('{block} .execute').click()")
    answer = f"{block} .live-responses-table tbody"
    status = docs_page.wait_for(
        f"document.querySelector('{answer} .response-col_status')?.textContent"
    )
    body = docs_page.wait_for(
        f"document.querySelector('{answer} .response-col_description pre')?.textContent"
    )
    assert status.strip() == "200"
    assert json.loads(body) == {"greeting": "hello world"}
