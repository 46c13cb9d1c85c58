"""The access-history page: accesses per day stacked by business as an SVG bar chart drawn
on the server (no script, no external asset), the matching log entries in a table with
filters, and the status of the newest signed checkpoint.

An access is one call to the business or auditor API (an ``api.*`` entry of the log,
allowed or refused); a call with no valid token has no business and is shown as
"unknown caller".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from flask import Blueprint, render_template, request

from pds import clock
from pds.audit.checkpoint import CheckpointError, open_checkpoint
from pds.errors import BadRequest
from pds.http.context import current_vault
from pds.http.security import owner_required
from pds.words import plural

bp = Blueprint("history", __name__)

DEFAULT_DAYS = 30
MAX_DAYS = 366
TABLE_ROWS = 200
UNKNOWN = "unknown caller"
# chart geometry (SVG user units)
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 220, 36, 24, 10
COLOURS = 8  # series colours s0..s7 in pds.css


@dataclass(frozen=True)
class Bar:
    day: str
    business: str
    count: int
    x: float
    y: float
    width: float
    height: float
    series: int


@dataclass
class Chart:
    days: list[str]
    businesses: list[str]
    peak: int
    bars: list[Bar] = field(default_factory=list)
    labels: list[tuple[float, str]] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    base: int = HEIGHT - BOTTOM
    top: int = TOP


def build_chart(counts: dict[tuple[str, str], int], days: list[str]) -> Chart:
    """Stacked bars: one column per day, one segment per business (in name order)."""
    businesses = sorted({b for _, b in counts})
    totals = {d: sum(n for (day, _), n in counts.items() if day == d) for d in days}
    peak = max(totals.values(), default=0)
    chart = Chart(days, businesses, peak)
    slot = (WIDTH - LEFT) / max(len(days), 1)
    scale = (HEIGHT - BOTTOM - TOP) / peak if peak else 0.0
    step = max(1, len(days) // 8)
    for i, day in enumerate(days):
        x = LEFT + i * slot
        y = float(HEIGHT - BOTTOM)
        for s, business in enumerate(businesses):
            n = counts.get((day, business), 0)
            if not n:
                continue
            h = n * scale
            y -= h
            bar = Bar(
                day,
                business,
                n,
                round(x + slot * 0.1, 2),
                round(y, 2),
                round(slot * 0.8, 2),
                round(h, 2),
                s % COLOURS,
            )
            chart.bars.append(bar)
        if i % step == 0:
            chart.labels.append((round(x + slot / 2, 2), day[5:]))
    return chart


def _date(name: str) -> date | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{name}={raw[:20]!r} is not a date (YYYY-MM-DD)") from None


def _span() -> tuple[date, date]:
    end = _date("to") or clock.utcnow().date()
    start = _date("from") or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise ValueError(f"from {start} is after to {end}")
    if (end - start).days >= MAX_DAYS:
        raise ValueError(f"choose at most {MAX_DAYS} days")
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
            str(exc), hint="Use the date pickers, or leave the fields empty."
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
    chart = build_chart(counts, days)
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
    return names.get(client, client) if client else UNKNOWN


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
            "text": f"The checkpoint signed at {signed} UTC does not match the stored log. "
            "Run `pds audit verify`.",
        }
    return {
        "ok": True,
        "size": size,
        "text": f"Log verified up to entry {latest.size - 1}, signed at {signed} UTC "
        f"({plural(size, 'entry')} in all).",
    }
