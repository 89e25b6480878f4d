"""The seed's first example: a notification written after the response is sent.

Run it: ``python -m asgi_bg examples.background_notification:app``, then
``curl -X POST localhost:8000/send-notification/me@example.com`` and read ``log.txt``.
"""

from asgi_bg import App, BackgroundTasks

from ._paths import log_path

app = App()


def write_notification(email: str, message: str = "") -> None:
    with open(log_path(), mode="w") as email_file:
        content = f"notification for {email}: {message}"
        email_file.write(content)


@app.post("/send-notification/{email}")
async def send_notification(email: str, background_tasks: BackgroundTasks) -> dict[str, str]:
    background_tasks.add_task(write_notification, email, message="some notification")
    return {"message": "Notification sent in the background"}
