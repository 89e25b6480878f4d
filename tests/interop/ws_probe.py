"""The WebSocket app the interop tests serve with each server, in a subprocess."""

from __future__ import annotations

import os

from asgi_bg import App, PlainTextResponse, WebSocket, WebSocketDisconnect

app = App()


@app.get("/pid")
def pid() -> int:
    return os.getpid()


@app.websocket("/echo")
async def echo(websocket: WebSocket) -> None:
    """Each message back as it came: text as text, binary as binary."""
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        return


@app.websocket("/json")
async def json_double(websocket: WebSocket) -> None:
    await websocket.accept()
    async for data in websocket.iter_json():
        await websocket.send_json({"double": data["n"] * 2})


@app.websocket("/close/{code:int}")
async def close_with(websocket: WebSocket, code: int) -> None:
    await websocket.accept()
    await websocket.close(code, f"closing with {code}")


@app.websocket("/deny")
async def deny(websocket: WebSocket) -> None:
    """Refused with the app's own response where the server has the extension."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(PlainTextResponse("members only", 401))
    else:
        await websocket.close()
