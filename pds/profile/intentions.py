"""Intentions: what the owner tells the market ("switching energy tariff from March").

Each intention is one sealed record in category ``intentions``, readable only by businesses
the owner grants ``read:intentions``. Each has its own last day (``expires_at``); once that
day has passed the intention is removed from the vault (record and all), so it can never be
served again. Its last day is also kept in plaintext in ``intention_expiry`` so expired
ones are found without decrypting anything. Removal runs before every records API read,
whenever the owner lists intentions, and in each pass of the delivery sender.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from marshmallow import ValidationError as MarshmallowError

from pds import clock
from pds.clock import now_iso
from pds.db import changes as db_changes
from pds.db import profile as db_profile
from pds.db import transaction
from pds.errors import NotFound, ValidationError
from pds.payloads import IntentionSchema, first_error, load_written
from pds.profile.changes import record_change

if TYPE_CHECKING:
    from pds.vault import Vault

CATEGORY = "intentions"
SOURCE = "owner:intentions"
FIELDS: tuple[str, ...] = tuple(IntentionSchema().fields)


def today() -> str:
    return clock.utcnow().date().isoformat()


def validate(payload: Any, *, on: str | None = None) -> dict[str, Any]:
    """The normalized intention, or ValidationError naming the first bad field."""
    if not isinstance(payload, dict):
        raise ValidationError("an intention must be a JSON object")
    try:
        data = dict(load_written(IntentionSchema(), payload))
    except MarshmallowError as exc:
        raise ValidationError(f"intention.{first_error(exc.messages)}") from None
    if data["expires_at"] < (on or today()):
        raise ValidationError(
            f"intention.expires_at: {data['expires_at']} has already passed",
            hint="Give the last day the intention should be shown, today or later.",
        )
    return data


def add(vault: Vault, payload: dict[str, Any]) -> tuple[int, bool]:
    """Store one intention; returns (record id, created)."""
    data = validate(payload)
    conn = vault.conn
    with transaction(conn):
        rid, created = vault.add_record(CATEGORY, now_iso()[:10], data, source=SOURCE)
        if created:
            db_profile.add_intention_expiry(conn, rid, data["expires_at"])
            record_change(vault, CATEGORY, list(FIELDS))
            vault.audit("intentions.add", actor="owner", category=CATEGORY, count=1)
    return rid, created


def listed(vault: Vault) -> list[dict[str, Any]]:
    """The owner's live intentions (expired ones are removed first)."""
    remove_expired(vault)
    return [{"id": r.id, **r.payload} for r in vault.records(CATEGORY)]


def withdraw(vault: Vault, record_id: int) -> None:
    """Remove one intention now; NotFound if there is none with this id."""
    conn = vault.conn
    if db_profile.record_category(conn, record_id) != CATEGORY:
        raise NotFound(
            f"there is no intention with id {record_id}",
            hint="See the ids with `pds intentions list`.",
        )
    with transaction(conn):
        _delete(vault, [record_id])
        record_change(vault, CATEGORY, list(FIELDS))
        vault.audit("intentions.withdraw", actor="owner", category=CATEGORY, count=1)


def remove_expired(vault: Vault, on: date | None = None) -> int:
    """Delete every intention whose last day is before ``on`` (today); returns how many."""
    day = (on or clock.utcnow().date()).isoformat()
    conn = vault.conn
    if not db_profile.any_expired_intention(conn, day):
        return 0  # the common case: a read, no write lock taken
    with transaction(conn):
        ids = db_profile.expired_intentions(conn, day)
        if not ids:
            return 0
        _delete(vault, ids)
        record_change(vault, CATEGORY, list(FIELDS))
        vault.audit("intentions.expire", actor="pds", category=CATEGORY, count=len(ids))
    return len(ids)


def _delete(vault: Vault, ids: list[int]) -> None:
    at = now_iso()
    for rid in ids:
        db_changes.log(vault.conn, at, CATEGORY, "forgotten", rid, rid, 1, None)
        db_profile.delete_intention(vault.conn, rid, CATEGORY)
