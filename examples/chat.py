"""A chat room over WebSockets whose transcript is saved after each member leaves.

Run it: ``pip install 'asgi_bg[websockets]'``, ``python -m asgi_bg examples.chat:app``,
then connect two clients, e.g. ``python -m websockets ws://localhost:8000/chat/lobby?nick=ann``.
Everything a member said goes to ``chat-<room>.txt`` by a background task that runs
once that member's connection has closed.
"""

from typing import Annotated

from asgi_bg import App, BackgroundTasks, Query, WebSocket, WebSocketDisconnect

from ._paths import log_path

app = App()


class Room:
    """The members of one room and what they say."""

    def __init__(self) -> None:
        self.members: set[WebSocket] = set()

    async def broadcast(self, text: str) -> None:
        for member in list(self.members):
            try:
                await member.send_text(text)
            except WebSocketDisconnect:
                self.members.discard(member)  # gone mid-send; its own handler cleans up


rooms: dict[str, Room] = {}


def save_transcript(room: str, nick: str, lines: list[str]) -> None:
    """Append what ``nick`` said in ``room``: a ``def`` task, so it runs in a thread."""
    with open(log_path(f"chat-{room}.txt"), "a", encoding="utf-8") as transcript:
        transcript.writelines(f"{nick}: {line}\n" for line in lines)


@app.websocket("/chat/{room}")
async def chat(
    websocket: WebSocket,
    room: str,
    nick: Annotated[str, Query()],
    tasks: BackgroundTasks,
) -> None:
    await websocket.accept()
    members = rooms.setdefault(room, Room())
    members.members.add(websocket)
    said: list[str] = []
    try:
        await members.broadcast(f"* {nick} joined")
        async for text in websocket.iter_text():  # ends when the client disconnects
            said.append(text)
            await members.broadcast(f"{nick}: {text}")
    finally:
        members.members.discard(websocket)
    # Runs after the connection has closed: the client is not kept waiting for the disk.
    tasks.add_task(save_transcript, room, nick, said)
    await members.broadcast(f"* {nick} left")
