"""The pages of background jobs (:mod:`pds.jobs`): a web import's or export's progress and
outcome, owner-only.

- ``GET /jobs/<id>``: while the job is queued or running, its progress (``static/jobs.js``
  polls the JSON below and reloads the page when the job ends; without JavaScript the page
  refreshes itself every few seconds); then, for an import, the import page with the same
  summary or the same error and hint as ``pds import``; for an export, the download link;
- ``GET /jobs/<id>.json``: the job's state and progress (``pds.jobs.Job.as_dict``);
- ``GET /jobs/<id>/download``: a finished export's zip, once: it is deleted from the
  jobs folder as the download starts (the open file is still sent whole).
"""

from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, jsonify, render_template, request, send_file

from pds import jobs
from pds.errors import NotFound
from pds.http import errors, security
from pds.http.context import current_vault

bp = Blueprint("jobs", __name__)
REFRESH_SECONDS = 2


@bp.get("/jobs/<int:job_id>")
@security.owner_required
def page(job_id: int) -> Any:
    job = jobs.get(current_vault(), job_id)
    if job.kind == "import" and job.finished:
        from pds.http.web.data import _import_page

        if job.state == "failed":
            return _import_page(error=job.error, hint=job.hint)
        return _import_page(summary={**(job.result or {}), "rejected_rows": job.rejected_rows})
    return render_template(
        "job.html", job=job, refresh=REFRESH_SECONDS, export_gone=jobs.EXPORT_GONE
    )


@bp.get("/jobs/<int:job_id>.json")
@security.owner_required
def status(job_id: int) -> Any:
    try:
        job = jobs.get(current_vault(), job_id)
    except NotFound as exc:  # the page's script reads JSON, so a JSON 404
        return errors.problem(exc)
    response = jsonify(job.as_dict())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/jobs/<int:job_id>/download")
@security.owner_required
def download(job_id: int) -> Any:
    vault = current_vault()
    path, name = jobs.export_file(vault, job_id)
    if request.method == "HEAD":  # a HEAD request does not take it
        handle: Any = io.BytesIO()
        length = path.stat().st_size
    else:
        handle = path.open("rb")  # noqa: SIM115 - send_file closes it after the response
        length = None
        jobs.remove_export(vault, job_id)  # unlinked now; the open file is still read whole
    response = send_file(
        handle,
        mimetype="application/zip",
        as_attachment=True,
        download_name=name,
        conditional=False,  # no ranges: one download is the whole file
        etag=False,
    )
    response.headers["Cache-Control"] = "no-store"
    if length is not None:
        response.content_length = length
    return response
