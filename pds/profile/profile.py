"""The owner's profile, told once: one current record in category ``profile``.

The profile is stored as a normal sealed record (so grants that name fields, e.g.
``authorization_details`` ``"fields": ["addresses"]``, see only those fields through
``GET /api/v1/records?category=profile``). A change replaces that one record: the old row is
deleted and the new payload stored in the same transaction, together with a change entry
(the changed field names only, ``pds.profile.changes.record_change``) and an audit entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from marshmallow import ValidationError as MarshmallowError

from pds import jsonbody
from pds.clock import now_iso
from pds.db import changes as db_changes
from pds.db import profile as db_profile
from pds.db import transaction
from pds.errors import ValidationError
from pds.jsonbody import TooDeep
from pds.payloads import ProfileSchema, first_error, load_written
from pds.profile.changes import record_change

if TYPE_CHECKING:
    from pds.vault import Vault

CATEGORY = "profile"
SOURCE = "owner:profile"
FIELDS: tuple[str, ...] = tuple(ProfileSchema().fields)
JSON_FIELDS = ("addresses", "marketing")
LIST_FIELDS = ("accessibility_needs", "dietary_needs")


def empty() -> dict[str, Any]:
    """A profile with every field unset."""
    return dict(ProfileSchema().load({}))


def current(vault: Vault) -> dict[str, Any]:
    """The current profile (every field present; unset ones are None)."""
    found = None
    for record in vault.records(CATEGORY):
        found = record  # the newest one wins (a business may have written one too)
    return {**empty(), **found.payload} if found else empty()


def validate(payload: Any) -> dict[str, Any]:
    """The normalized profile, or ValidationError naming the first bad field."""
    if not isinstance(payload, dict):
        raise ValidationError("a profile must be a JSON object")
    try:
        return dict(load_written(ProfileSchema(), payload))
    except MarshmallowError as exc:
        raise ValidationError(f"profile.{first_error(exc.messages)}") from None


def save(vault: Vault, payload: dict[str, Any]) -> list[str]:
    """Replace the profile with ``payload``; returns the names of the fields that changed."""
    new = validate(payload)
    old = current(vault)
    changed = [name for name in FIELDS if old.get(name) != new.get(name)]
    if not changed:
        return []
    conn = vault.conn
    with transaction(conn):
        before = db_changes.last_seq(conn)
        replacing = db_profile.delete_category_records(conn, CATEGORY)
        vault.add_record(CATEGORY, now_iso()[:10], new, source=SOURCE)
        if replacing:
            db_changes.replaced(conn, before, CATEGORY)  # one "changed" in the record feed
        record_change(vault, CATEGORY, changed)
        vault.audit(
            "profile.update", actor="owner", category=CATEGORY, count=1, detail={"fields": changed}
        )
    return changed


def check_field(name: str) -> str:
    if name not in FIELDS:
        raise ValidationError(
            f"{name!r} is not a profile field", hint=f"One of: {', '.join(FIELDS)}."
        )
    return name


def parse_value(name: str, text: str) -> Any:
    """A field's value as typed on the command line or in a form (JSON for structured ones)."""
    if name in JSON_FIELDS:
        try:
            return jsonbody.loads(text)
        except TooDeep as exc:
            deep = f"{name} is JSON nested more than {exc.limit} levels deep"
            raise ValidationError(deep) from None
        except ValueError:
            example = (
                '[{"lines": ["1 High Street"], "postcode": "AB1 2CD", "country": "GB"}]'
                if name == "addresses"
                else '{"email": true, "sms": false}'
            )
            raise ValidationError(f"{name} must be JSON", hint=f"For example: {example}") from None
    if name in LIST_FIELDS:
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def set_field(vault: Vault, name: str, value: Any) -> list[str]:
    """Set one field (already parsed); returns the changed field names."""
    return save(vault, {**_stored(vault), check_field(name): value})


def unset_field(vault: Vault, name: str) -> list[str]:
    return save(vault, {**_stored(vault), check_field(name): None})


def _stored(vault: Vault) -> dict[str, Any]:
    """The current profile in load form (what ``ProfileSchema().load`` accepts again)."""
    return {k: v for k, v in current(vault).items() if v is not None}
