"""The access-history page: accesses per day stacked by business as an SVG bar chart drawn
on the server (no script, no external asset), the matching log entries in a table with
filters, and the status of the newest signed checkpoint.

An access is one call to the business or auditor API (an ``api.*`` entry of the log,
allowed or refused); a call with no valid token has no business and is shown as
"unknown caller".
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import gettext, lazy_gettext, ngettext

from pds import clock
from pds.audit.checkpoint import CheckpointError, open_checkpoint
from pds.errors import BadRequest
from pds.http.context import current_vault
from pds.http.locale import number
from pds.http.security import owner_required
from pds.http.web import charts
from pds.http.web.charts import Chart, Series

bp = Blueprint("history", __name__)

DEFAULT_DAYS = 30
MAX_DAYS = 366
TABLE_ROWS = 200
UNKNOWN = lazy_gettext("unknown caller")


def build_chart(counts: dict[tuple[str, str], int], days: list[str], title: str = "") -> Chart:
    """Stacked bars from the shared chart code: one column per day, one segment per business
    (in name order), the numbers also written as a table."""
    businesses = sorted({b for _, b in counts})
    series = [Series(b, [counts.get((d, b), 0) for d in days]) for b in businesses]
    return charts.bars(title, days, series, stacked=True, show=_count, name=_tick)


def _count(value: float) -> str:
    return number(int(value))


def _tick(day: str) -> str:
    """An x-axis label: the day of the month and the month (``01-31``), short enough to fit."""
    return day[5:]


def _date(name: str) -> date | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(
            gettext("%(name)s=%(raw)r is not a date (YYYY-MM-DD)", name=name, raw=raw[:20])
        ) from None


def _span() -> tuple[date, date]:
    end = _date("to") or clock.utcnow().date()
    start = _date("from") or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise ValueError(gettext("from %(start)s is after to %(end)s", start=start, end=end))
    if (end - start).days >= MAX_DAYS:
        raise ValueError(gettext("choose at most %(days)s days", days=MAX_DAYS))
    return start, end


def accesses(vault: Any, start: date, end: date) -> list[tuple[int, dict[str, Any]]]:
    """Every ``api.*`` entry dated within [start, end], oldest first."""
    rows = vault.log.api_calls_between(start.isoformat(), (end + timedelta(days=1)).isoformat())
    return [(idx, json.loads(text)) for idx, text in rows]


@bp.get("/history")
@owner_required
def index() -> Any:
    from pds.oauth import admin

    try:
        start, end = _span()
    except ValueError as exc:
        raise BadRequest(
            str(exc), hint=gettext("Use the date pickers, or leave the fields empty.")
        ) from None
    vault = current_vault()
    names = {c.client_id: c.name for c in admin.list_clients(vault)}
    wanted = {
        "client": request.args.get("client", ""),
        "decision": request.args.get("decision", ""),
    }
    entries = [(i, e) for i, e in accesses(vault, start, end) if _keep(e, wanted)]
    counts: dict[tuple[str, str], int] = {}
    for _, e in entries:
        key = (e["time"][:10], _business(e, names))
        counts[key] = counts.get(key, 0) + 1
    days = [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]
    title = gettext(
        "Accesses per day from %(start)s to %(end)s, by business: %(total)s in all",
        start=start.isoformat(),
        end=end.isoformat(),
        total=len(entries),
    )
    chart = build_chart(counts, days, title)
    rows = [_row(i, e, names) for i, e in reversed(entries[-TABLE_ROWS:])]
    return render_template(
        "history.html",
        chart=chart,
        rows=rows,
        total=len(entries),
        names=names,
        wanted=wanted,
        start=start.isoformat(),
        end=end.isoformat(),
        checkpoint=checkpoint_status(vault),
    )


def _keep(entry: dict[str, Any], wanted: dict[str, str]) -> bool:
    if wanted["client"] and entry.get("client", "") != wanted["client"]:
        return False
    return not (wanted["decision"] and entry["decision"] != wanted["decision"])


def _business(entry: dict[str, Any], names: dict[str, str]) -> str:
    client = entry.get("client")
    return names.get(client, client) if client else str(UNKNOWN)


def _row(index: int, e: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {
        "index": index,
        "time": e["time"][:19].replace("T", " "),
        "business": _business(e, names),
        "action": e["action"],
        "category": e.get("category", ""),
        "count": e.get("count", ""),
        "purpose": e.get("purpose", ""),
        "decision": e["decision"],
        "reason": e.get("reason", ""),
    }


def checkpoint_status(vault: Any) -> dict[str, Any]:
    """A checkpoint of the whole log (signed now if the log grew since the newest one),
    checked against the vault's public key and the stored tree."""
    log = vault.log
    latest = log.checkpoint()
    size = log.size()
    public = vault.keyring.signing_key(vault.conn).public_key()
    try:
        cp = open_checkpoint(latest.note, log.origin, public, log.origin)
        ok = cp.size == latest.size and cp.root == log.root(cp.size)
    except CheckpointError:
        ok = False
    signed = latest.created_at[:19].replace("T", " ")
    if not ok:
        return {
            "ok": False,
            "size": size,
            "text": gettext(
                "The checkpoint signed at %(signed)s UTC does not match the stored log. "
                "Run `pds audit verify`.",
                signed=signed,
            ),
        }
    return {
        "ok": True,
        "size": size,
        "text": gettext(
            "Log verified up to entry %(last)s, signed at %(signed)s UTC (%(entries)s in all).",
            last=latest.size - 1,
            signed=signed,
            entries=ngettext("%(num)s entry", "%(num)s entries", size),
        ),
    }
