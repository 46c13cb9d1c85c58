"""The owner's ``/profile`` page: edit the profile and manage intentions.

Forms POST with ``csrf_token`` (``owner_required`` checks it). A profile that does not
validate is shown again with the owner's input and an error beside each wrong field (422);
a saved one answers 303 back to the page. Addresses are rows ``address-<n>-<part>`` (the
page shows the saved ones and one empty row); needs are one per line.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from marshmallow import ValidationError as MarshmallowError

from pds.errors import PdsError
from pds.http import security
from pds.http.context import current_vault
from pds.payloads import CONTACT_CHANNELS, INTENTION_KINDS, ProfileSchema
from pds.profile import intentions, profile

bp = Blueprint("profile", __name__)

ADDRESS_PARTS = ("label", "lines", "locality", "region", "postcode", "country")
TEXT_FIELDS = ("name", "email", "phone", "preferred_language", "contact_channel", "contact_hours")
NEED_FIELDS = ("accessibility_needs", "dietary_needs")


@bp.get("/profile")
@security.owner_required
def show() -> Any:
    vault = current_vault()
    return _page(_as_form(profile.current(vault)))


@bp.post("/profile")
@security.owner_required
def save() -> Any:
    form = _form_values()
    payload, rows = _payload(form)
    try:
        ProfileSchema().load(payload)
    except MarshmallowError as exc:
        return _page(form, errors=_errors(exc.messages, rows), status=422)
    profile.save(current_vault(), payload)
    return redirect(url_for("profile.show", saved=1), 303)


@bp.post("/profile/intentions")
@security.owner_required
def add_intention() -> Any:
    fields = ("text", "kind", "from_date", "until_date", "expires_at")
    entered = {k: request.form.get(k, "").strip() for k in fields}
    try:
        intentions.add(current_vault(), {k: v for k, v in entered.items() if v})
    except PdsError as exc:
        vault = current_vault()
        return _page(
            _as_form(profile.current(vault)),
            intention=entered,
            intention_error=exc.message,
            status=422,
        )
    return redirect(url_for("profile.show") + "#intentions", 303)


@bp.post("/profile/intentions/<int:record_id>/withdraw")
@security.owner_required
def withdraw_intention(record_id: int) -> Any:
    try:
        intentions.withdraw(current_vault(), record_id)
    except PdsError as exc:
        vault = current_vault()
        return _page(_as_form(profile.current(vault)), intention_error=exc.message, status=404)
    return redirect(url_for("profile.show") + "#intentions", 303)


def _page(
    form: dict[str, Any],
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
    intention: dict[str, str] | None = None,
    intention_error: str | None = None,
) -> Any:
    return (
        render_template(
            "profile.html",
            form=form,
            errors=errors or {},
            saved=request.args.get("saved") == "1" and status == 200,
            channels=CONTACT_CHANNELS,
            kinds=INTENTION_KINDS,
            intentions=intentions.listed(current_vault()),
            intention=intention or {},
            intention_error=intention_error,
            csrf=security.csrf_token(),
        ),
        status,
    )


def _as_form(data: dict[str, Any]) -> dict[str, Any]:
    """The stored profile as the form's text values."""
    form: dict[str, Any] = {k: data.get(k) or "" for k in TEXT_FIELDS}
    for k in NEED_FIELDS:
        form[k] = "\n".join(data.get(k) or [])
    form["marketing"] = {ch for ch, on in (data.get("marketing") or {}).items() if on}
    form["marketing_set"] = data.get("marketing") is not None
    form["addresses"] = [
        {p: "\n".join(a["lines"]) if p == "lines" else (a.get(p) or "") for p in ADDRESS_PARTS}
        for a in data.get("addresses") or []
    ] + [dict.fromkeys(ADDRESS_PARTS, "")]
    return form


def _form_values() -> dict[str, Any]:
    """What the owner typed, kept as text so an invalid form is shown again unchanged."""
    f = request.form
    form: dict[str, Any] = {k: f.get(k, "").strip() for k in (*TEXT_FIELDS, *NEED_FIELDS)}
    form["marketing"] = {ch for ch in CONTACT_CHANNELS if f.get(f"marketing.{ch}")}
    form["marketing_set"] = f.get("marketing_set") == "1"
    rows = []
    n = 0
    while f"address-{n}-country" in f and n < 10:
        rows.append({p: f.get(f"address-{n}-{p}", "").strip() for p in ADDRESS_PARTS})
        n += 1
    form["addresses"] = rows
    return form


def _payload(form: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
    """The profile payload from the form, and the form row of each address in it."""
    payload: dict[str, Any] = {k: form[k] or None for k in TEXT_FIELDS}
    for k in NEED_FIELDS:
        payload[k] = [line.strip() for line in form[k].splitlines() if line.strip()] or None
    if form["marketing"] or form["marketing_set"]:
        payload["marketing"] = {ch: ch in form["marketing"] for ch in CONTACT_CHANNELS}
    addresses, rows = [], []
    for n, row in enumerate(form["addresses"]):
        if not any(row.values()):
            continue
        address = {p: row[p] or None for p in ADDRESS_PARTS}
        address["lines"] = [x.strip() for x in row["lines"].splitlines() if x.strip()]
        addresses.append(address)
        rows.append(n)
    payload["addresses"] = addresses or None
    return payload, rows


def _errors(messages: dict[str, Any], rows: list[int]) -> dict[str, str]:
    """marshmallow's messages as one text per form input name."""
    out: dict[str, str] = {}
    for name, value in messages.items():
        if name == "addresses" and isinstance(value, dict):
            for idx, parts in value.items():
                if isinstance(parts, dict):
                    for part, msgs in parts.items():
                        out[f"address-{rows[idx]}-{part}"] = _first(msgs)
                else:
                    out["addresses"] = _first(parts)
        else:
            out[name.split(".")[0]] = _first(value)
    return out


def _first(value: Any) -> str:
    while isinstance(value, list | dict):
        value = value[0] if isinstance(value, list) else next(iter(value.values()))
    return str(value)
