"""Data-rights requests to businesses: GDPR Art. 15 (access) and Art. 17 (erasure).

A request is a letter the owner sends (pds writes the text), a deadline pds tracks, and,
for access, the import of the file the business sent back that fulfils it.

The deadline is one month after the day the request was sent (GDPR Art. 12(3)): the same
day of the next month, or that month's last day when it has no such day (31 January ->
28 or 29 February). It is computed here with ``calendar`` rather than a date library: the
rule is five lines and pds has no other need for one.
"""

from __future__ import annotations

import calendar
import sqlite3
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from pds import clock
from pds.db import rights as db_rights
from pds.db import transaction
from pds.errors import NotFound, ValidationError
from pds.oauth import store
from pds.words import long_date

if TYPE_CHECKING:
    from pds.vault import Vault

KINDS = ("access", "erasure")
STATUSES = ("open", "fulfilled", "withdrawn")
LIST_HINT = "See the ids with `pds requests list`."


class RequestClosed(ValidationError):
    """A fulfil or withdraw of a request that is no longer open."""

    code = "request_closed"
    status = 409


def due_date(sent_on: date) -> date:
    """One month after ``sent_on`` (Art. 12(3)), clamped to the end of a shorter month."""
    year, month = (
        (sent_on.year + 1, 1) if sent_on.month == 12 else (sent_on.year, sent_on.month + 1)
    )
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(sent_on.day, last))


@dataclass(frozen=True)
class RightsRequest:
    id: int
    kind: str
    business: str
    client_id: str | None
    grant_id: int | None
    created_at: str
    sent_on: date
    due_on: date
    status: str
    fulfilled_at: str | None
    fulfilled_by_source: int | None
    note: str | None

    def overdue(self, today: date) -> bool:
        """Still open after its due day."""
        return self.status == "open" and today > self.due_on

    def as_dict(self, today: date) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "business": self.business,
            "client_id": self.client_id,
            "grant_id": self.grant_id,
            "created_at": self.created_at,
            "sent_on": self.sent_on.isoformat(),
            "due_on": self.due_on.isoformat(),
            "status": self.status,
            "overdue": self.overdue(today),
            "fulfilled_at": self.fulfilled_at,
            "fulfilled_by_source": self.fulfilled_by_source,
            "note": self.note,
        }


def _row(row: tuple) -> RightsRequest:
    values = list(row)
    values[6], values[7] = date.fromisoformat(row[6]), date.fromisoformat(row[7])
    return RightsRequest(*values)


def get(vault: Vault, request_id: int) -> RightsRequest:
    row = db_rights.request_row(vault.conn, request_id)
    if row is None:
        raise NotFound(f"no request with id {request_id}", hint=LIST_HINT)
    return _row(row)


def list_requests(
    vault: Vault, *, overdue_only: bool = False, today: date | None = None
) -> list[RightsRequest]:
    """Every request, oldest first (only the overdue ones with ``overdue_only``)."""
    today = today or clock.today()
    found = [_row(r) for r in db_rights.request_rows(vault.conn)]
    return [r for r in found if r.overdue(today)] if overdue_only else found


def _check_sent_on(sent_on: date, today: date) -> None:
    if sent_on > today:
        raise ValidationError(
            f"the date sent, {sent_on.isoformat()}, is in the future",
            hint="Give the day you sent (or will send today) the request.",
        )


def _grant_for_erasure(conn: sqlite3.Connection, grant_id: int) -> store.Grant:
    grant = store.get_grant(conn, grant_id)
    if grant.revoked_at is None:
        raise ValidationError(
            f"grant {grant_id} is still active; the business may still read your data",
            hint=f"Revoke it first: `pds grants revoke {grant_id} --request-erasure`.",
        )
    return grant


def create(
    vault: Vault,
    kind: str,
    business: str,
    *,
    client_id: str | None = None,
    grant_id: int | None = None,
    sent_on: date | None = None,
    note: str | None = None,
    today: date | None = None,
) -> RightsRequest:
    """Record a new request (one audit entry, same transaction) and return it."""
    today = today or clock.today()
    sent_on = sent_on or today
    business = business.strip()
    if kind not in KINDS:
        raise ValidationError(f"{kind!r} is not a kind of request; use access or erasure")
    if not business:
        raise ValidationError("the business's name is empty", hint="Name the business.")
    _check_sent_on(sent_on, today)
    conn = vault.conn
    if grant_id is not None:
        if kind != "erasure":
            raise ValidationError("only an erasure request names a grant")
        client_id = _grant_for_erasure(conn, grant_id).client_id
    if client_id is not None and store.get_client(conn, client_id) is None:
        raise NotFound(f"no client with id {client_id}", hint="See them with `pds clients list`.")
    with transaction(conn):
        rid = db_rights.insert_request(
            conn,
            kind,
            business,
            client_id,
            grant_id,
            clock.now_iso(),
            sent_on.isoformat(),
            due_date(sent_on).isoformat(),
            note,
        )
        _audit(vault, "request.create", rid, kind, client_id, grant_id)
    return get(vault, rid)


def erasure_for_grant(vault: Vault, grant_id: int, *, today: date | None = None) -> RightsRequest:
    """An Art. 17 request to the business behind a revoked grant, sent today."""
    grant = store.get_grant(vault.conn, grant_id)
    client = store.get_client(vault.conn, grant.client_id)
    business = client.name if client else grant.client_id
    return create(vault, "erasure", business, grant_id=grant_id, today=today)


def _audit(
    vault: Vault,
    action: str,
    rid: int,
    kind: str,
    client_id: str | None,
    grant_id: int | None,
    **detail: Any,
) -> None:
    vault.audit(
        action,
        actor="owner",
        client_id=client_id,
        grant_id=grant_id,
        detail={"request": rid, "kind": kind, **detail},
    )


def check_open(vault: Vault, request_id: int, *, by_import: bool = False) -> RightsRequest:
    """The request if it is open (and, ``by_import``, one an imported file can fulfil)."""
    req = get(vault, request_id)
    if req.status != "open":
        when = f" on {req.fulfilled_at[:10]}" if req.fulfilled_at else ""
        raise RequestClosed(
            f"request {request_id} is already {req.status}{when}",
            hint="Only an open request can be fulfilled or withdrawn; see `pds requests list`.",
        )
    if by_import and req.kind != "access":
        raise ValidationError(
            f"request {request_id} asks for erasure; an imported file cannot fulfil it",
            hint=f"When the business confirms the erasure: `pds requests fulfil {request_id}`.",
        )
    return req


def fulfil(
    vault: Vault, request_id: int, source_id: int | None = None, *, by_import: bool = False
) -> RightsRequest:
    """Mark an open request fulfilled: an access request by the import ``source_id`` of the
    file the business sent back (``by_import``: that import added nothing new, so there is
    no source to link)."""
    req = check_open(vault, request_id, by_import=by_import or source_id is not None)
    conn = vault.conn
    if req.kind == "access" and source_id is None and not by_import:
        raise ValidationError(
            f"request {request_id} is fulfilled by the file the business sent back",
            hint=f"Import it with `pds import FILE --fulfils {request_id}`, or give --source.",
        )
    if source_id is not None and not db_rights.source_exists(conn, source_id):
        raise NotFound(f"no imported file with source id {source_id}", hint=SOURCES_HINT)
    with transaction(conn):
        db_rights.mark_fulfilled(conn, request_id, clock.now_iso(), source_id)
        extra = {"source": source_id} if source_id is not None else {}
        _audit(vault, "request.fulfil", req.id, req.kind, req.client_id, req.grant_id, **extra)
    return get(vault, request_id)


SOURCES_HINT = "`pds import --json FILE` prints the source id of each file it imports."


def withdraw(vault: Vault, request_id: int) -> RightsRequest:
    """The owner no longer pursues the request."""
    req = check_open(vault, request_id)
    with transaction(vault.conn):
        db_rights.mark_withdrawn(vault.conn, request_id)
        _audit(vault, "request.withdraw", req.id, req.kind, req.client_id, req.grant_id)
    return get(vault, request_id)


def recent_sources(vault: Vault, limit: int = 20) -> list[dict[str, Any]]:
    """The newest imports (id, filename, connector, imported_at), to choose a fulfilment."""
    return db_rights.recent_sources(vault.conn, limit)


# -- the letter -----------------------------------------------------------------------------

NAME_PLACEHOLDER = "[your name]"
EMAIL_PLACEHOLDER = "[your e-mail address]"


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("address") or value.get("value")
    return value.strip() if isinstance(value, str) and value.strip() else None


def owner_identity(vault: Vault) -> tuple[str, str]:
    """(name, e-mail) from the newest ``profile`` record, or placeholders to fill in."""
    latest = None
    for latest in vault.records("profile"):  # noqa: B007 - the newest is the last
        pass
    payload = latest.payload if latest else {}
    return (
        _text(payload.get("name")) or NAME_PLACEHOLDER,
        _text(payload.get("email")) or EMAIL_PLACEHOLDER,
    )


def _access_body(email: str) -> list[str]:
    return [
        "Subject: Subject access request under Article 15 GDPR",
        "",
        "Dear Data Protection Officer,",
        "",
        "I am writing to ask for a copy of all the personal data you hold about me, under my "
        "right of access in Article 15 of the General Data Protection Regulation (GDPR).",
        "",
        "Please also tell me the purposes for which you process my data, the categories of "
        "data concerned, who you have disclosed it to, how long you will keep it, and where "
        "you got it from if not from me (Article 15(1)).",
        "",
        "Please send the copy in a structured, commonly used and machine-readable format, "
        "such as CSV or JSON (Articles 15(3) and 20), by e-mail to " + email + ".",
    ]


def _and(words: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)


def _erasure_body(vault: Vault, req: RightsRequest) -> list[str]:
    lines = [
        "Subject: Request for erasure under Article 17 GDPR",
        "",
        "Dear Data Protection Officer,",
        "",
    ]
    if req.grant_id is not None:
        grant = store.get_grant(vault.conn, req.grant_id)
        cats = _and(list(grant.access.categories))
        revoked = long_date(date.fromisoformat((grant.revoked_at or req.created_at)[:10]))
        lines.append(
            f"On {revoked} I withdrew the access I had given you, through my personal data "
            f"store, to my data in these categories: {cats} (grant {req.grant_id}). I now ask "
            "you to erase all the personal data about me that you received through that "
            "access, under my right to erasure in Article 17 of the General Data Protection "
            "Regulation (GDPR); I have withdrawn my consent (Article 17(1)(b))."
        )
    else:
        lines.append(
            "I ask you to erase all the personal data you hold about me, under my right to "
            "erasure in Article 17 of the General Data Protection Regulation (GDPR)."
        )
    lines += [
        "",
        "Please confirm to me in writing when the data has been erased, and tell the others "
        "you have disclosed it to, as Article 19 requires.",
    ]
    return lines


def letter(vault: Vault, req: RightsRequest, identity: tuple[str, str] | None = None) -> str:
    """The dated letter (or e-mail) text for a request, in plain English, signed with
    ``identity`` (name, e-mail; by default :func:`owner_identity`)."""
    name, email = identity or owner_identity(vault)
    head = [name, email, "", long_date(req.sent_on), "", f"To: {req.business}"]
    body = _access_body(email) if req.kind == "access" else _erasure_body(vault, req)
    tail = [
        "",
        "You must answer without undue delay and at the latest within one month of receiving "
        f"this request (Article 12(3)), that is by {long_date(req.due_on)}.",
        "",
        "Yours faithfully,",
        name,
    ]
    return "\n".join([*head, *body, *tail]) + "\n"
