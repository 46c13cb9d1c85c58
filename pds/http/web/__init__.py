"""The owner's web UI: the blueprint for the health check, the home page and the rights page,
and the navigation every page shares. The other pages have a blueprint each, in this package;
``pds.http.app`` registers them all."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, jsonify, render_template
from flask_babel import gettext, lazy_gettext

from pds import clock, db
from pds.http import security
from pds.http.context import current_vault
from pds.http.security import owner_required
from pds.oauth import wording
from pds.policy import label
from pds.rights import requests as rights_requests
from pds.words import plural

bp = Blueprint("web", __name__)

NAV = (
    ("web.home", lazy_gettext("Home")),
    ("data.browse", lazy_gettext("Data")),
    ("data.upload", lazy_gettext("Import")),
    ("owner.grants", lazy_gettext("Businesses")),
    ("policies.index", lazy_gettext("Policies")),
    ("history.index", lazy_gettext("Access history")),
    ("web.rights", lazy_gettext("Your rights")),
)
EXPIRING_DAYS = 7
RECENT = 10
ARRIVED = 5


@bp.app_context_processor
def _shared() -> dict[str, Any]:
    return {
        "owner_signed_in": security.signed_in,
        "auditor_signed_in": security.auditor_signed_in,
        "owner_nav": NAV,
        "csrf_token": security.csrf_token,
    }


@bp.get("/healthz")
def healthz():
    """Liveness for the container HEALTHCHECK: the process answers and the vault opens."""
    db.ping(current_vault().conn)
    return jsonify(status="ok")


@bp.get("/")
@owner_required
def home():
    from pds.oauth import admin

    vault = current_vault()
    clients = admin.list_clients(vault)
    names = {c.client_id: c.name for c in clients}
    live = admin.list_grants(vault)
    soon = clock.now() + EXPIRING_DAYS * 86400
    granted = {g.client_id for g in admin.list_grants(vault, include_inactive=True)}
    return render_template(
        "home.html",
        status=vault.status(),
        sources=vault.sources(),
        grants=[_grant_row(g, names) for g in live],
        expiring=[_grant_row(g, names) for g in live if g.expires_at <= soon],
        pending=[
            c
            for c in clients
            if not c.verified and c.removed_at is None and c.client_id not in granted
        ],
        accesses=recent_accesses(vault, names),
        arrived=[_arrival(s, names) for s in vault.latest_sources(ARRIVED)],
        overdue=[
            {
                "kind": r.kind.capitalize(),
                "business": r.business,
                "sent": wording.day(r.sent_on.isoformat()),
                "due": wording.day(r.due_on.isoformat()),
            }
            for r in rights_requests.list_requests(vault, overdue_only=True)
        ],
    )


def held_in_words(n: int, category: str) -> str:
    """``600 transactions``, ``1 contact``; a category that is not a countable noun counts
    records: ``3 energy records``."""
    if category.endswith("s"):
        return plural(n, category[:-1], category)
    return plural(n, f"{category} record")


def _arrival(source: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    held = [held_in_words(n, cat) for cat, n in source["held"].items()]
    if source["connector"] == "api":
        writer = source["filename"].removeprefix("client:")
        name = gettext("written by %(name)s", name=names.get(writer, writer))
    else:
        name = source["filename"]
    if not held:
        what = gettext("no records")
    elif len(held) == 1:
        what = held[0]
    else:
        what = gettext("%(some)s and %(last)s", some=", ".join(held[:-1]), last=held[-1])
    return {"name": name, "held": what, "day": wording.day(source["imported_at"])}


def _grant_row(grant: Any, names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": grant.id,
        "business": names.get(grant.client_id, grant.client_id),
        "scope": grant.scope,
        "words": wording.in_words(grant.access),
        "purpose": label(grant.purpose) if grant.purpose else None,
        "until": wording.day(clock.iso(grant.expires_at)),
    }


def recent_accesses(vault: Any, names: dict[str, str], n: int = RECENT) -> list[dict[str, Any]]:
    """The last ``n`` calls to the business and auditor APIs, newest first."""
    rows = vault.log.recent_api_calls(n)
    out = []
    for idx, text in rows:
        e = json.loads(text)
        client = e.get("client")
        out.append(
            {
                "index": idx,
                "time": e["time"][:19].replace("T", " "),
                "business": names.get(client, client) if client else gettext("an unknown caller"),
                "action": e["action"],
                "category": e.get("category", ""),
                "count": e.get("count", ""),
                "decision": e["decision"],
            }
        )
    return out


@bp.get("/rights")
@owner_required
def rights():
    return render_template("rights.html")
