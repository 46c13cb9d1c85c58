"""The owner signs in with the vault passphrase; sees, narrows and revokes grants;
registers and removes clients.

Login form: ``POST /login`` with ``passphrase``, ``csrf_token`` and ``next`` (a local path);
success answers 303 to ``next``. A wrong passphrase answers 401 and writes one
``login.failed`` audit entry; repeated failures answer 429 with ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext, ngettext

from pds import clock
from pds.errors import BadRequest, NotFound, PdsError, VaultBusy, VaultLocked
from pds.http import limits, security
from pds.http.context import current_vault
from pds.oauth import admin, store, wording
from pds.oauth.controller import Controller
from pds.policy import label
from pds.vault import keys

bp = Blueprint("owner", __name__)


def _refusal(exc: PdsError) -> PdsError:
    """The error to show for an action the owner asked for that pds refused: ``exc`` itself
    (its status, message and hint), except that a failure of pds's own (a 5xx: a full disk)
    shows as a 400 refusal too, its message saying what happened. A busy vault stays itself
    (the busy answer: 503, ``Retry-After``)."""
    if exc.status < 500 or isinstance(exc, VaultBusy):
        return exc
    return BadRequest(exc.message, hint=exc.hint)


def _login_page(status: int = 200, error: str | None = None, next_: str = "/") -> Any:
    return (
        render_template("login.html", csrf=security.csrf_token(), next=next_, error=error),
        status,
    )


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    vault = current_vault()  # VaultLocked (a 401 page) on a server run without the key
    next_ = security.safe_next(request.values.get("next"))
    if security.reading():
        if security.signed_in():
            return redirect(next_, 303)
        return _login_page(next_=next_)
    if not security.csrf_ok():
        abort(403, description=security.CSRF_MESSAGE)
    throttle, who = limits.login_throttle(), limits.address()
    if wait := throttle.wait(who):
        body, status = _login_page(
            429,
            ngettext(
                "Too many failed attempts. Try again in %(num)s second.",
                "Too many failed attempts. Try again in %(num)s seconds.",
                wait,
            ),
            next_,
        )
        return body, status, {"Retry-After": str(wait)}
    try:
        keys.unlock(vault.conn, request.form.get("passphrase", ""))
    except VaultLocked:
        throttle.failed(who)
        vault.audit(
            "login.failed", actor="anonymous", decision="refused", reason="wrong passphrase"
        )
        return _login_page(401, gettext("That passphrase does not open this vault."), next_)
    throttle.succeeded(who)
    security.sign_in()
    return redirect(next_, 303)


@bp.post("/logout")
@security.owner_required
def logout() -> Any:
    security.sign_out()
    return redirect(url_for("owner.login"), 303)


@bp.get("/grants")
@security.owner_required
def grants() -> Any:
    vault = current_vault()
    clients = admin.list_clients(vault)
    names = {c.client_id: c.name + (" (removed)" if c.removed_at else "") for c in clients}
    now = clock.now()
    rows = [_grant_view(g, now) for g in admin.list_grants(vault, include_inactive=True)]
    return render_template(
        "grants.html",
        grants=rows,
        names=names,
        clients=[c for c in clients if c.removed_at is None],
        open_registration=current_app.config["PDS_SETTINGS"].open_registration,
        csrf=security.csrf_token(),
    )


def _grant_view(g: store.Grant, now: int) -> dict[str, Any]:
    status = "revoked" if g.revoked_at else ("expired" if g.expires_at <= now else "active")
    return {
        "id": g.id,
        "client_id": g.client_id,
        "scope": g.scope,
        "purpose": g.purpose,
        "purpose_label": label(g.purpose) if g.purpose else None,
        "expires": clock.iso(g.expires_at),
        "status": status,
        "items": wording.lines(g.access),
        "categories": list(g.access.categories),
    }


@bp.get("/grants/<int:grant_id>/revoke")
@security.owner_required
def confirm_revoke(grant_id: int) -> Any:
    vault = current_vault()
    try:
        grant = store.get_grant(vault.conn, grant_id)
    except NotFound as exc:
        raise NotFound(exc.message) from None  # the page has no use for the CLI's hint
    client = store.get_client(vault.conn, grant.client_id)
    return render_template(
        "revoke.html",
        grant=_grant_view(grant, clock.now()),
        name=client.name if client else grant.client_id,
        csrf=security.csrf_token(),
    )


@bp.post("/grants/<int:grant_id>/revoke")
@security.owner_required
def revoke(grant_id: int) -> Any:
    try:
        admin.revoke_grant(current_vault(), grant_id)
    except PdsError as exc:
        raise _refusal(exc) from None
    return redirect(url_for("owner.grants"), 303)


@bp.post("/grants/<int:grant_id>/narrow")
@security.owner_required
def narrow(grant_id: int) -> Any:
    try:
        admin.drop_category(current_vault(), grant_id, request.form.get("category", ""))
    except PdsError as exc:
        raise _refusal(exc) from None
    return redirect(url_for("owner.grants"), 303)


@bp.get("/clients/<client_id>/remove")
@security.owner_required
def confirm_remove(client_id: str) -> Any:
    """What removing the business would end, and the button that does it."""
    try:
        preview = admin.removal_preview(current_vault(), client_id)
    except PdsError as exc:
        raise _refusal(exc) from None
    return render_template("client_remove.html", removal=preview, csrf=security.csrf_token())


@bp.post("/clients/<client_id>/remove")
@security.owner_required
def remove_client(client_id: str) -> Any:
    try:
        admin.remove_client(current_vault(), client_id)
    except PdsError as exc:
        raise _refusal(exc) from None
    return redirect(url_for("owner.grants"), 303)


@bp.route("/clients/new", methods=["GET", "POST"])
@security.owner_required
def new_client() -> Any:
    contact_fields = ("email", "address", "country", "phone")
    form = {"name": "", "redirect_uris": "", "public": False, **dict.fromkeys(contact_fields, "")}
    if security.reading():
        return render_template("client_new.html", form=form, csrf=security.csrf_token())
    form = {
        "name": request.form.get("name", ""),
        "redirect_uris": request.form.get("redirect_uris", ""),
        "public": request.form.get("public") == "1",
        **{k: request.form.get(k, "").strip() for k in contact_fields},
    }
    uris = [u.strip() for u in form["redirect_uris"].splitlines() if u.strip()]
    contact = Controller(
        contacts=(form["email"],) if form["email"] else (),
        address=form["address"],
        country=form["country"],
        phone=form["phone"],
    )
    try:
        client, secret = admin.add_client(
            current_vault(), form["name"], uris, public=form["public"], contact=contact
        )
    except PdsError as exc:
        return (
            render_template(
                "client_new.html",
                form=form,
                error=exc.message,
                hint=exc.hint,
                csrf=security.csrf_token(),
            ),
            exc.status if exc.status < 500 else 400,
        )
    return render_template("client_new.html", client=client, secret=secret, form=form)
