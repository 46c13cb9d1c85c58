"""The owner's data pages: browse records by category and source, filter by date, search
the decrypted text of one category, view one record, and import a file by upload.

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
from datetime import date, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser
from werkzeug.utils import secure_filename

from pds import jobs, registry
from pds.diskfull import DiskFull, reporting_disk_full
from pds.errors import BadRequest, NotFound, PdsError, VaultBusy
from pds.http import security
from pds.http.context import current_vault
from pds.http.security import owner_required
from pds.vocabulary import CATEGORIES

if TYPE_CHECKING:
    from pds.vault import Vault

bp = Blueprint("data", __name__)

PAGE = 50
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


def _day(name: str) -> str | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        raise BadRequest(
            f"{name}={raw[:20]!r} is not a date (YYYY-MM-DD)",
            hint="Use the date pickers, or leave the field empty.",
        ) from None


def matches(payload: dict[str, Any], needle: str) -> bool:
    """True when ``needle`` (already lower-case) is in any value of the payload."""
    return any(needle in str(v).lower() for v in payload.values() if v is not None)


@bp.get("/data/<category>")
@owner_required
def category(category: str) -> Any:
    if category not in CATEGORIES:
        raise NotFound(f'there is no category called "{category}"')
    since, until = _day("from"), _day("to")
    source = request.args.get("source", type=int)
    needle = request.args.get("q", "").strip().lower()
    skip = request.args.get("skip", 0, type=int)
    vault = current_vault()
    end = (date.fromisoformat(until) + timedelta(days=1)).isoformat() if until else None
    found, more = [], False
    seen = 0
    for rec in vault.records(category, since=since, until=end):
        if source is not None and rec.source_id != source:
            continue
        if needle and not matches(rec.payload, needle):
            continue
        seen += 1
        if seen <= skip:
            continue
        if len(found) == PAGE:
            more = True
            break
        found.append(rec)
    return render_template(
        "records.html",
        category=category,
        records=found,
        fields=_columns(found),
        sources=_sources(vault, category, source),
        args={"from": since or "", "to": until or "", "source": source, "q": needle},
        skip=skip,
        next_skip=skip + PAGE if more else None,
    )


def _sources(vault: Vault, category: str, chosen: int | None) -> list[dict[str, Any]]:
    """The sources holding ``category``, oldest first, plus the one the query string chose
    when it holds none (the filter shows what it applies: no record matches)."""
    held = vault.sources(category)
    if chosen is None or any(s["id"] == chosen for s in held):
        return held
    return [s for s in vault.sources() if s["id"] == chosen or s in held]


def _columns(records: list[Any]) -> list[str]:
    cols: dict[str, None] = {}
    for rec in records:
        cols.update(
            dict.fromkeys(k for k, v in rec.payload.items() if v not in (None, "") and k != "date")
        )
    return list(cols)[:6]


@bp.get("/records/<int:record_id>")
@owner_required
def record(record_id: int) -> Any:
    rec = current_vault().get(record_id)
    names = {s["id"]: s["filename"] for s in current_vault().sources()}
    return render_template("record.html", rec=rec, source=names.get(rec.source_id, ""))


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
