"""The seed's dependency example, ``Union`` with ``typing_extensions.Annotated``."""

from typing import Union

from typing_extensions import Annotated

from asgi_bg import App, BackgroundTasks, Depends

from ._paths import log_path

app = App()


def write_log(message: str) -> None:
    with open(log_path(), mode="a") as log:
        log.write(message)


def get_query(background_tasks: BackgroundTasks, q: Union[str, None] = None) -> Union[str, None]:
    if q:
        message = f"found query: {q}\n"
        background_tasks.add_task(write_log, message)
    return q


@app.post("/send-notification/{email}")
async def send_notification(
    email: str, background_tasks: BackgroundTasks, q: Annotated[str, Depends(get_query)]
) -> dict[str, str]:
    message = f"message to {email}\n"
    background_tasks.add_task(write_log, message)
    return {"message": "Message sent"}
