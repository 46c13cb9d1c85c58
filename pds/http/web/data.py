"""The owner's data pages: browse records by category (each category through its own view,
:mod:`pds.http.web.views`), view one record, and import a file by upload.

Records are read through the vault's decrypting API on the server; the owner reading their
own data is not an access by a business, so browsing writes no audit entry (an import does,
as in the CLI). An upload is written, as the request body is read, straight to a file with a
generated name in ``$PDS_HOME/jobs/`` (mode 0600) and queued as a background job
(:mod:`pds.jobs`); the answer is a redirect to the job's page at once. The job imports it
by :func:`pds.importer.import_file` under the name the browser gave (reduced to a safe base
name, so the importer's messages name the file): the same code and the same messages as
``pds import``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser
from werkzeug.utils import secure_filename

from pds import jobs, registry
from pds.diskfull import DiskFull, reporting_disk_full
from pds.errors import NotFound, PdsError, VaultBusy
from pds.http import security
from pds.http.context import current_vault
from pds.http.security import owner_required
from pds.http.web.views import (
    balances,
    common,
    contacts,
    energy,
    events,
    health,
    labels,
    table,
    timeline,
    transactions,
)
from pds.http.web.views import record as record_page
from pds.vocabulary import CATEGORIES

bp = Blueprint("data", __name__)
bp.add_app_template_filter(labels.label, "label")  # {{ "usage_point"|label }}: "Meter point"
bp.add_app_template_filter(labels.cell, "cell")  # a payload value as text, never dict text

VIEWS: dict[str, Any] = {
    "transactions": transactions,
    "balances": balances,
    "energy": energy,
    "health": health,
    "contacts": contacts,
    "events": events,
    "locations": timeline,
    "activity": timeline,
}
"""The view module of each category that has one (a ``render(vault, category, filters)``
function and, optionally, ``FILTERS``: its own query parameters); others get ``table``."""
MAX_UPLOAD_BYTES = 512 * 1024 * 1024
"""The import form's own body limit (the rest of the app keeps its 256 KiB)."""


class _StoringParser(FormDataParser):
    """Werkzeug's form parser, writing each uploaded file straight to the jobs folder."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["stream_factory"] = _store_upload
        super().__init__(*args, **kwargs)


def _store_upload(
    total_content_length: int | None,
    content_type: str | None,
    filename: str | None,
    content_length: int | None = None,
) -> IO[bytes]:
    fd, path = jobs.new_file(current_app.config["PDS_SETTINGS"], "upload-", ".part")
    stream = os.fdopen(fd, "w+b")
    g.setdefault("pds_uploads", []).append((path, stream))
    return stream


@bp.before_request
def _upload_limit() -> Any:
    if request.endpoint == "data.upload" and request.method == "POST":
        request.max_content_length = MAX_UPLOAD_BYTES
        if not security.signed_in():
            return None  # owner_required answers; the body is not stored
        request.form_data_parser_class = _StoringParser
        home = current_app.config["PDS_SETTINGS"].home
        try:
            with reporting_disk_full(home / jobs.FOLDER, "import again", "nothing was imported"):
                request.files  # noqa: B018 - read the body now, into the jobs folder
        except DiskFull as exc:
            return _import_page(exc.status, exc=exc)
        except RequestEntityTooLarge:
            return _too_large()
    return None


@bp.teardown_request
def _drop_unqueued_uploads(_exc: BaseException | None) -> None:
    """Delete the files of this request's upload that no job took (refused, cut off)."""
    kept = g.get("pds_kept_uploads", ())
    for path, stream in g.get("pds_uploads", ()):
        stream.close()
        if path not in kept:
            path.unlink(missing_ok=True)


def _too_large() -> Any:
    """The import page, 413: the body is past the form's limit (werkzeug stopped reading)."""
    limit = MAX_UPLOAD_BYTES // (1024 * 1024)
    return _import_page(
        413,
        error=f"the file is larger than the {limit} MiB the web page takes",
        hint="Split the export into smaller files, or use `pds import FILE` on the server.",
    )


@bp.get("/data")
@owner_required
def browse() -> Any:
    vault = current_vault()
    return render_template("data.html", status=vault.status(), sources=vault.sources())


@bp.get("/data/<category>")
@owner_required
def category(category: str) -> Any:
    if category not in CATEGORIES:
        raise NotFound(f'there is no category called "{category}"')
    view = VIEWS.get(category, table)
    return view.render(current_vault(), category, common.read_filters(*view_filters(view)))


def view_filters(view: Any) -> tuple[str, ...]:
    """The query parameters a view reads besides the common ones (its ``FILTERS``)."""
    return tuple(getattr(view, "FILTERS", ()))


@bp.get("/records/<int:record_id>")
@owner_required
def record(record_id: int) -> Any:
    return record_page.render(current_vault(), record_id)


@bp.route("/import", methods=["GET", "POST"])
@owner_required
def upload() -> Any:
    if security.reading():
        return _import_page()
    sent = sum(len(files) for _, files in request.files.lists())
    if sent > 1:
        return _import_page(
            422,
            error=f"this form sent {sent} files; nothing was kept",
            hint="Upload one file at a time.",
        )
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _import_page(422, error="Choose a file to import.")
    connector = request.form.get("connector") or None
    skip_bad = request.form.get("skip_bad") == "1"
    name = safe_name(upload.filename)
    stored = next(path for path, stream in g.pds_uploads if stream is upload.stream)
    upload.stream.close()
    try:
        job_id = jobs.queue_import(current_vault(), stored, name, connector, skip_bad)
    except VaultBusy:  # another import held the vault too long
        return _import_page(503, error=jobs.BUSY, hint=jobs.BUSY_HINT, retry=True)
    except PdsError as exc:
        return _import_page(exc.status if exc.status < 500 else 400, exc=exc)
    g.setdefault("pds_kept_uploads", []).append(stored)
    jobs.wake()
    return redirect(url_for("jobs.page", job_id=job_id), 303)


def safe_name(sent: str) -> str:
    """The base name of a file name a browser sent, reduced by ``secure_filename`` (ASCII
    letters, digits, ``._-``), its extension kept apart so a name of other letters keeps it
    (``日本.csv`` is ``upload.csv``, not ``csv``): connectors tell formats by it."""
    base = Path(sent.replace("\\", "/")).name
    stem, suffix = os.path.splitext(base)
    extension = secure_filename(suffix[1:])
    if not extension:
        return secure_filename(base) or "upload"
    return f"{secure_filename(stem) or 'upload'}.{extension}"


def _import_page(
    status: int = 200,
    *,
    error: str | None = None,
    hint: str | None = None,
    exc: PdsError | None = None,
    summary: Any = None,
    retry: bool = False,
) -> Any:
    headers = {"Retry-After": str(VaultBusy.retry_after)} if retry else {}
    return (
        render_template(
            "import.html",
            connectors=registry.all_connectors(),
            error=exc.message if exc else error,
            hint=exc.hint if exc else hint,
            summary=summary,
            limit_mib=MAX_UPLOAD_BYTES // (1024 * 1024),
            csrf=security.csrf_token(),
        ),
        status,
        headers,
    )
