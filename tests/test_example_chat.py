"""``examples/chat.py``: two members talk; each one's transcript is saved after it left."""

from pathlib import Path

import pytest

from asgi_bg.testing import TestClient
from examples.chat import app, rooms


@pytest.fixture
def log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ASGI_BG_EXAMPLES_DIR", str(tmp_path))
    return tmp_path


def test_members_hear_each_other_and_transcripts_are_saved_after_leaving(
    log_dir: Path, anyio_backend: str
) -> None:
    rooms.clear()
    transcript = log_dir / "chat-lobby.txt"
    with (
        TestClient(app, backend=anyio_backend) as client,
        client.websocket_connect("/chat/lobby?nick=ann") as ann,
    ):
        assert ann.receive_text() == "* ann joined"
        with client.websocket_connect("/chat/lobby?nick=bob") as bob:
            assert bob.receive_text() == "* bob joined"
            assert ann.receive_text() == "* bob joined"
            bob.send_text("hi ann")
            assert ann.receive_text() == "bob: hi ann"
            assert bob.receive_text() == "bob: hi ann"
            assert not transcript.exists()  # nothing is written while bob is connected
        # Leaving bob's block waited for his connection's call: the task has run.
        assert transcript.read_text() == "bob: hi ann\n"
        assert ann.receive_text() == "* bob left"
        ann.send_text("bye")
        assert ann.receive_text() == "ann: bye"
    assert transcript.read_text() == "bob: hi ann\nann: bye\n"


def test_a_missing_nick_refuses_the_handshake(anyio_backend: str) -> None:
    from asgi_bg import WebSocketDisconnect  # noqa: PLC0415

    client = TestClient(app, backend=anyio_backend)
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/chat/x"):
        pass
    assert refused.value.code == 1008
