"""The record of processing per business (GDPR Art. 30 style), from its grants and the log.

For one client: who the controller is, the purposes it stated, the categories (actions and
fields) it was ever granted, the recipients (the client itself; pds knows of no third party
unless the purpose is selling data on, which the record names as an unnamed recipient), the
retention (each grant's expiry or revocation), and dates and counts from the access log: the
first and last grant, the first and last API call, calls allowed and refused, and records
read and written per category (the ``count`` of each ``api.records.*`` entry).

Read-only: nothing here writes to the vault or the log. Built from plain rows, so the same
dict is the JSON (``pds processing --json``, ``/processing/<client_id>.json``) and the page.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from pds import clock
from pds.db import audit as db_audit
from pds.errors import NotFound
from pds.oauth import store
from pds.policy.purposes import label

if TYPE_CHECKING:
    from pds.vault import Vault

THIRD_PARTY_PURPOSE = "dpv:SellDataToThirdParties"


def _client(vault: Vault, client_id: str) -> store.Client:
    client = store.get_client(vault.conn, client_id)
    if client is None:
        raise NotFound(
            f"no business with client id {client_id!r}",
            hint="See the ids with `pds clients list`.",
        )
    return client


def _grants(vault: Vault, client_id: str) -> list[store.Grant]:
    return [
        g for g in store.list_grants(vault.conn, include_inactive=True) if g.client_id == client_id
    ]


def _status(grant: store.Grant, at: int) -> str:
    if grant.revoked_at:
        return "revoked"
    return "expired" if grant.expires_at <= at else "active"


def _categories(grants: list[store.Grant]) -> dict[str, dict[str, Any]]:
    """Union over the grants: per category the actions and fields (None: every field)."""
    out: dict[str, dict[str, Any]] = {}
    for g in grants:
        for c in (p for whole in g.access.categories.values() for p in whole.parts()):
            cur = out.setdefault(c.category, {"actions": set(), "fields": []})
            cur["actions"] |= c.actions
            if c.fields is None or cur["fields"] is None:
                cur["fields"] = None
            else:
                cur["fields"] = list(dict.fromkeys(cur["fields"] + list(c.fields)))
    return {
        name: {"actions": sorted(v["actions"]), "fields": v["fields"]}
        for name, v in sorted(out.items())
    }


def _access(vault: Vault, client_id: str) -> dict[str, Any]:
    times: list[str] = []
    decisions: Counter[str] = Counter()
    read: Counter[str] = Counter()
    written: Counter[str] = Counter()
    for text in db_audit.client_api_entries(vault.conn, client_id):
        entry = json.loads(text)
        decisions[entry["decision"]] += 1
        if entry["decision"] != "allowed":
            continue
        times.append(entry["time"])
        category, count = entry.get("category"), entry.get("count", 0)
        if category and entry["action"] == "api.records.read":
            read[category] += count
        elif category and entry["action"] == "api.records.write":
            written[category] += count
    return {
        "first_at": times[0] if times else None,
        "last_at": times[-1] if times else None,
        "calls_allowed": decisions["allowed"],
        "calls_refused": decisions["refused"],
        "records_read": dict(sorted(read.items())),
        "records_written": dict(sorted(written.items())),
    }


def record(vault: Vault, client_id: str) -> dict[str, Any]:
    """The record of processing for one business."""
    client = _client(vault, client_id)
    grants = _grants(vault, client_id)
    at = clock.now()
    purposes = list(dict.fromkeys(g.purpose for g in grants if g.purpose))
    recipients: list[dict[str, Any]] = [{"name": client.name, "client_id": client_id}]
    if THIRD_PARTY_PURPOSE in purposes:
        recipients.append({"name": "third parties the business sells data to", "client_id": None})
    return {
        "controller": {"name": client.name, "client_id": client_id, "verified": client.verified},
        "purposes": [{"purpose": p, "label": label(p)} for p in purposes],
        "categories": _categories(grants),
        "recipients": recipients,
        "retention": [
            {
                "grant_id": g.id,
                "created_at": g.created_at,
                "expires_at": clock.iso(g.expires_at),
                "revoked_at": g.revoked_at,
                "status": _status(g, at),
            }
            for g in grants
        ],
        "grants": {
            "count": len(grants),
            "first_at": grants[0].created_at if grants else None,
            "last_at": grants[-1].created_at if grants else None,
        },
        "access": _access(vault, client_id),
    }


def overview(vault: Vault) -> list[dict[str, Any]]:
    """One line per business that was ever registered: name, grants, last access."""
    out = []
    for client in store.list_clients(vault.conn):
        grants = _grants(vault, client.client_id)
        out.append(
            {
                "client_id": client.client_id,
                "name": client.name,
                "grants": len(grants),
                "active_grants": sum(1 for g in grants if g.is_active()),
                "last_access_at": _access(vault, client.client_id)["last_at"],
            }
        )
    return out
