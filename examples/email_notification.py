"""Email notification over real SMTP: a ``def`` task sends with ``smtplib`` after the response.

The handler answers ``202 Accepted`` at once; the blocking SMTP conversation runs in a
worker thread afterwards (under the app's ``task_threads`` limiter), so a slow mail
server never delays the client nor blocks the event loop. A failed delivery is logged
with the task's name and the request, and counted in ``app.tasks.stats()``.

Configuration, read when a mail is sent: ``SMTP_HOST`` (default ``localhost``),
``SMTP_PORT`` (default ``1025``) and ``SMTP_SENDER`` (default ``noreply@example.com``).

Try it with a local SMTP server that prints what it receives::

    python -m aiosmtpd -n -l localhost:1025 &
    python -m asgi_bg examples.email_notification:app
    curl -X POST localhost:8000/notify/me@example.com \\
         -H 'content-type: application/json' -d '{"subject": "Hi", "body": "Welcome!"}'
"""

import os
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

from asgi_bg import App, BackgroundTasks

app = App()


@dataclass
class Notification:
    subject: str
    body: str


def send_email(to: str, subject: str, body: str) -> None:
    """Deliver one mail; runs in a worker thread after the response was sent."""
    message = EmailMessage()
    message["From"] = os.environ.get("SMTP_SENDER", "noreply@example.com")
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    host = os.environ.get("SMTP_HOST", "localhost")
    port = int(os.environ.get("SMTP_PORT", "1025"))
    with smtplib.SMTP(host, port, timeout=30) as smtp:
        smtp.send_message(message)


@app.post("/notify/{email}", status_code=202)
async def notify(email: str, notification: Notification, tasks: BackgroundTasks) -> dict[str, str]:
    tasks.add_task(send_email, email, notification.subject, notification.body)
    return {"message": f"Notification to {email} will be sent"}


@app.get("/tasks")
async def task_counts() -> dict[str, int]:
    """How many mails went out (``succeeded``) or failed (``failed``)."""
    return app.tasks.stats()
