"""The owner's web UI. For now: the home page and the health check."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template

from pds.web.security import owner_required

bp = Blueprint("web", __name__)


@bp.get("/healthz")
def healthz():
    """Liveness for the container HEALTHCHECK: the process answers and the vault opens."""
    from pds.app import current_vault

    current_vault().conn.execute("SELECT 1").fetchone()
    return jsonify(status="ok")


@bp.get("/")
@owner_required
def home():
    from pds.app import current_vault

    status = current_vault().status()
    return render_template("home.html", status=status)
