"""Owner pages for receipts, the record of processing and the full export.

- ``GET /grants/<id>/receipt``: the grant's newest consent receipt as a download (compact
  JWS, ``application/jose``);
- ``GET /processing`` (one line per business), ``/processing/<client_id>`` (the record of
  processing) and ``/processing/<client_id>.json`` (the same as JSON);
- ``GET /export`` (a page with one button) and ``POST /export`` (CSRF-checked): queues an
  export job (:mod:`pds.jobs`) and redirects to its page, which offers the zip of ``pds
  export`` as a download once written; it is one ``export`` entry in the access log.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, redirect, render_template, url_for

from pds import jobs
from pds.errors import VaultBusy
from pds.http import errors, security
from pds.http.context import current_vault
from pds.oauth import receipts as rmod
from pds.rights import export as exportmod
from pds.rights import processing as procmod

bp = Blueprint("receipts", __name__)


@bp.get("/grants/<int:grant_id>/receipt")
@security.owner_required
def receipt(grant_id: int) -> Any:
    found = rmod.latest(current_vault().conn, grant_id)
    return Response(
        found.jws + "\n",
        mimetype="application/jose",
        headers={
            "Content-Disposition": f'attachment; filename="receipt-grant-{grant_id}.jws"',
            "Cache-Control": "no-store",
        },
    )


@bp.get("/processing")
@security.owner_required
def processing_index() -> Any:
    return render_template("processing.html", rows=procmod.overview(current_vault()))


@bp.get("/processing/<client_id>.json")
@security.owner_required
def processing_json(client_id: str) -> Any:
    doc = procmod.record(current_vault(), client_id)
    response = jsonify(doc)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/processing/<client_id>")
@security.owner_required
def processing_client(client_id: str) -> Any:
    doc = procmod.record(current_vault(), client_id)
    return render_template("processing_client.html", doc=doc)


@bp.route("/export", methods=["GET", "POST"])
@security.owner_required
def export() -> Any:
    vault = current_vault()
    if security.reading():
        return render_template(
            "export.html", counts=exportmod.counts(vault), csrf=security.csrf_token()
        )
    try:
        job_id = jobs.queue_export(vault)
    except VaultBusy:  # an import held the vault too long
        # the export's own words (not the busy answer's), under the plain title
        page, status = errors.page(503, jobs.BUSY, jobs.BUSY_HINT)
        return page, status, {"Retry-After": str(VaultBusy.retry_after)}
    jobs.wake()
    return redirect(url_for("jobs.page", job_id=job_id), 303)
