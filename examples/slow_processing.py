"""Slow data processing: upload a file, get ``202 Accepted`` and a job id, poll for the result.

``POST /jobs`` takes the file as a multipart upload (field ``file``), answers ``202``
with the job's id and URL (also in ``Location``) before any work is done, and processes
the upload in a ``def`` background task, in a worker thread: the ``UploadFile`` stays
open until the task has finished, then asgi_bg closes it and deletes its temporary
file. ``GET /jobs/{id}`` reports ``queued``, ``processing``, ``done`` (with the result)
or ``failed`` (with the error); an unknown id answers 404.

Jobs live in this process's memory, so this suits one worker; with several workers or
restarts, keep them in a database or a queue instead.

Try it::

    python -m asgi_bg examples.slow_processing:app
    curl -i -F file=@README.md localhost:8000/jobs   # 202, a job id
    curl localhost:8000/jobs/<id>                     # processing, then done

Needs the ``forms`` extra (``pip install 'asgi_bg[forms]'``).

``SLOW_PROCESSING_SECONDS`` (default 2) is how long the pretend-expensive step takes.
"""

import hashlib
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from asgi_bg import App, BackgroundTasks, HTTPException, JSONResponse, UploadFile

app = App()

Status = Literal["queued", "processing", "done", "failed"]


@dataclass
class Job:
    id: str
    size: int
    status: Status = "queued"
    result: dict[str, Any] | None = None
    error: str | None = None
    submitted: float = field(default_factory=time.time)


JOBS: dict[str, Job] = {}


def expensive_step() -> None:
    """Stands in for the slow part of real work: parsing, resizing, calling a model."""
    time.sleep(float(os.environ.get("SLOW_PROCESSING_SECONDS", "2")))


def process(job: Job, upload: UploadFile) -> None:
    """The background task: runs in a worker thread, after the 202 went out.

    It reads the upload line by line, so a large file is never held in memory whole.
    """
    job.status = "processing"
    digest, lines, words = hashlib.sha256(), 0, 0
    try:
        for line in upload.file:
            digest.update(line)
            lines += 1
            words += len(line.decode("utf-8").split())
        expensive_step()
    except Exception as exc:
        job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
        raise  # asgi_bg logs it with the task's name and counts it as failed
    job.result = {
        "bytes": upload.size,
        "lines": lines,
        "words": words,
        "sha256": digest.hexdigest(),
    }
    job.status = "done"


@app.post("/jobs")
async def submit(file: UploadFile, tasks: BackgroundTasks) -> JSONResponse:
    if not file.size:
        raise HTTPException(422, "Upload a non-empty file in the form field 'file'")
    job_id = uuid.uuid4().hex
    job = JOBS[job_id] = Job(job_id, size=file.size)
    tasks.add_task(process, job, file)
    url = app.url_path_for("job_status", job_id=job.id)
    body = {"id": job.id, "status": job.status, "url": url}
    return JSONResponse(body, status_code=202, headers={"location": url})


@app.get("/jobs/{job_id}", name="job_status")
async def job_status(job_id: str) -> dict[str, Any]:
    job = JOBS.get(job_id)
    if job is None:
        raise HTTPException(404, f"No job {job_id}")
    return asdict(job)
