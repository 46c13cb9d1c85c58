"""The auditor's web view: the access log, its signed checkpoints and RFC 9162 proofs —
never records, never the owner's pages.

An auditor signs in by presenting, once, an access token whose grant holds ``audit:read``
(the same token the auditor API takes). pds looks the token up by its hash and opens a
separate auditor session (the signed session cookie holds the grant id, never the token);
the session ends when the grant is revoked or expires, after 12 hours, or on sign-out. Every
sign-in attempt and every page the auditor opens writes one audit entry, except attempts
refused by the failed-login back-off (429): the owner's ``LoginThrottle``, keyed
``auditor:<address>``, is what bounds a stranger's refused entries here (``pds.http.limits``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from flask_babel import gettext, lazy_gettext, ngettext

from pds.errors import BadRequest, PdsError
from pds.http import limits, security
from pds.http.context import current_vault
from pds.oauth import store
from pds.oauth.access import AUDIT_SCOPE

bp = Blueprint("auditor", __name__, url_prefix="/auditor")

PAGE = 100
BAD_TOKEN = lazy_gettext("That is not a live access token with audit:read.")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _live_grant() -> store.Grant | None:
    who = security.auditor()
    if who is None:
        return None
    try:
        grant = store.get_grant(current_vault().conn, who["grant"])
    except PdsError:
        return None
    return grant if grant.is_active() and grant.access.audit else None


def auditor_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Only a signed-in auditor whose grant is still live; one audit entry per page."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        grant = _live_grant()
        if grant is None:
            session.pop("auditor", None)
            if not security.reading():
                abort(401)
            return redirect(url_for("auditor.login"))
        if request.method == "POST" and not security.csrf_ok():
            abort(403, description=security.CSRF_MESSAGE)
        current_vault().audit(
            f"auditor.{view.__name__}",
            actor=f"client:{grant.client_id}",
            client_id=grant.client_id,
            grant_id=grant.id,
            purpose=grant.purpose,
        )
        return view(*args, **kwargs)

    return wrapper


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if security.reading():
        return render_template("auditor_login.html", csrf=security.csrf_token())
    if not security.csrf_ok():
        abort(403, description=security.CSRF_MESSAGE)
    throttle, who = limits.login_throttle(), "auditor:" + limits.address()
    if wait := throttle.wait(who):
        body, status = _login_failed(
            429,
            ngettext(
                "Too many failed attempts. Try again in %(num)s second.",
                "Too many failed attempts. Try again in %(num)s seconds.",
                wait,
            ),
        )
        return body, status, {"Retry-After": str(wait)}
    vault = current_vault()
    token = store.find_access_token(vault.conn, request.form.get("access_token", "").strip())
    if (
        token is None
        or token.is_expired()
        or token.is_revoked()
        or AUDIT_SCOPE not in token.scope.split()
        or not token.grant.access.audit
    ):
        throttle.failed(who)
        vault.audit(
            "auditor.signin", actor="anonymous", decision="refused", reason="not an audit token"
        )
        return _login_failed(401, str(BAD_TOKEN))
    throttle.succeeded(who)
    vault.audit(
        "auditor.signin",
        actor=f"client:{token.client_id}",
        client_id=token.client_id,
        grant_id=token.grant_id,
    )
    security.auditor_sign_in(token.grant_id, token.client_id)
    return redirect(url_for("auditor.log"), 303)


def _login_failed(status: int, message: str) -> Any:
    page = render_template("auditor_login.html", csrf=security.csrf_token(), error=message)
    return page, status


@bp.post("/logout")
def logout() -> Any:
    if not security.csrf_ok():
        abort(403, description=security.CSRF_MESSAGE)
    if security.auditor() is not None:  # a stranger cannot sign the auditors out
        security.sign_out("auditor")
    else:
        session.clear()
    return redirect(url_for("auditor.login"), 303)


@bp.get("")
@auditor_required
def log() -> Any:
    vault = current_vault()
    size = vault.log.size()
    start = max(0, min(request.args.get("start", max(0, size - PAGE), type=int) or 0, size))
    entries = list(vault.log.entries(start, min(size, start + PAGE)))
    return render_template(
        "auditor.html",
        size=size,
        start=start,
        page=PAGE,
        entries=[(i, text, _b64(leaf)) for i, text, leaf in entries],
        checkpoints=vault.log.checkpoints()[-10:][::-1],
        verifier_key=vault.log_verifier_key(),
    )


@bp.get("/proof")
@auditor_required
def proof() -> Any:
    log_ = current_vault().log
    size = log_.size()
    index = request.args.get("index", type=int)
    tree = request.args.get("size", size, type=int)
    first = request.args.get("first", type=int)
    result: dict[str, Any] = {}
    try:
        if index is not None:
            if not 0 <= index < tree <= size:
                raise ValueError(f"entry {index} is not inside a tree of {tree} (log: {size})")
            path = log_.inclusion_proof(index, tree)
            result = {"kind": "inclusion", "index": index, "size": tree, "proof": path}
        elif first is not None:
            if not 0 < first <= tree <= size:
                raise ValueError(f"no consistency proof from {first} to {tree} (log: {size})")
            path = log_.consistency_proof(first, tree)
            result = {"kind": "consistency", "first": first, "size": tree, "proof": path}
    except ValueError as exc:
        raise BadRequest(str(exc), hint=gettext("Choose numbers inside the log's size.")) from None
    if result:
        result["root"] = _b64(log_.root(result["size"]))
        result["proof"] = [_b64(h) for h in result["proof"]]
    return render_template("auditor_proof.html", size=size, result=result)
