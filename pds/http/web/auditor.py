"""The auditor's web view: the access log, its signed checkpoints and RFC 9162 proofs —
never records, never the owner's pages.

The log is a table, newest first, filtered by business, action, outcome and date, in pages;
"Verify now" runs the checks of :mod:`pds.http.web.auditor_check`; the bundle download is
what ``pds audit export`` writes (always the whole log: a verifier replays it from entry 0).

An auditor signs in with the one-time link of ``pds audit invite`` (its secret is in the
URL's fragment, which no browser sends, so it reaches no server log and no Referer;
``auditor-welcome.js`` posts it, or the auditor pastes it; its first use spends it), or by
presenting an access token whose grant holds ``audit:read``
(the same token the auditor API takes). pds looks the secret up by its hash and opens a
separate auditor session (the signed session cookie holds the grant id, never the token);
the session ends when the grant is revoked or expires, after 12 hours, or on sign-out. Every
sign-in attempt and every page the auditor opens writes one audit entry, except attempts
refused by the failed-login back-off (429): the owner's ``LoginThrottle``, keyed
``auditor:<address>``, is what bounds a stranger's refused entries here (``pds.http.limits``).
"""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Callable
from datetime import date, timedelta
from functools import wraps
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, send_file, session, url_for
from flask_babel import gettext, lazy_gettext, ngettext

from pds.audit.log import DECISIONS
from pds.audit.verify import write_bundle
from pds.db import audit as db_audit
from pds.errors import BadRequest, PdsError
from pds.http import limits, security
from pds.http.context import current_vault
from pds.http.web import auditor_check
from pds.oauth import invite, store
from pds.oauth.access import AUDIT_SCOPE
from pds.vault import Vault

bp = Blueprint("auditor", __name__, url_prefix="/auditor")

ROWS = 50
"""Entries per page of the table."""
MAX_SKIP = 2**31
BAD_TOKEN = lazy_gettext("That is not a live access token with audit:read.")
BAD_LINK = lazy_gettext(
    "That sign-in link was already used, has expired or was revoked. Ask the vault's owner "
    "for a new invitation."
)


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
    """Only a signed-in auditor whose grant is still live; one audit entry per page (a view
    marked ``logs_itself`` writes its own, with what it did)."""

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
        if getattr(view, "logs_itself", False):
            return view(grant, *args, **kwargs)
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
    def audit_token(vault: Vault) -> store.Token | None:
        token = store.find_access_token(vault.conn, request.form.get("access_token", "").strip())
        if (
            token is None
            or token.is_expired()
            or token.is_revoked()
            or AUDIT_SCOPE not in token.scope.split()
            or not token.grant.access.audit
        ):
            return None
        return token

    return _sign_in("auditor_login.html", audit_token, "not an audit token", BAD_TOKEN)


def _sign_in(
    template: str,
    find: Callable[[Vault], store.Token | None],
    refused: str,
    bad: Any,
    detail: dict[str, str] | None = None,
) -> Any:
    """The sign-in page ``template``, or its form answered: throttled per address, the token
    ``find`` gives (None: refused with the message ``bad``, logged with the reason
    ``refused``) opens the auditor's session; either way one ``auditor.signin`` entry."""
    if security.reading():
        return render_template(template, csrf=security.csrf_token())
    if not security.csrf_ok():
        abort(403, description=security.CSRF_MESSAGE)
    throttle, who = limits.login_throttle(), "auditor:" + limits.address()
    if wait := throttle.wait(who):
        body, status = _login_failed(429, _too_many(wait), template)
        return body, status, {"Retry-After": str(wait)}
    vault = current_vault()
    token = find(vault)
    if token is None:
        throttle.failed(who)
        vault.audit("auditor.signin", actor="anonymous", decision="refused", reason=refused)
        return _login_failed(401, str(bad), template)
    throttle.succeeded(who)
    vault.audit(
        "auditor.signin",
        actor=f"client:{token.client_id}",
        client_id=token.client_id,
        grant_id=token.grant_id,
        detail=detail,
    )
    security.auditor_sign_in(token.grant_id, token.client_id)
    return redirect(url_for("auditor.log"), 303)


def _too_many(wait: int) -> str:
    return ngettext(
        "Too many failed attempts. Try again in %(num)s second.",
        "Too many failed attempts. Try again in %(num)s seconds.",
        wait,
    )


def _login_failed(status: int, message: str, template: str = "auditor_login.html") -> Any:
    page = render_template(template, csrf=security.csrf_token(), error=message)
    return page, status


@bp.route("/welcome", methods=["GET", "POST"])
def welcome() -> Any:
    """The invitation link's page: its secret arrives in the fragment (posted by
    ``auditor-welcome.js``, or pasted), is spent, and opens the auditor's session."""

    def link_token(vault: Vault) -> store.Token | None:
        return invite.redeem_link(vault, request.form.get("invite", "").strip().lstrip("#"))

    return _sign_in(
        "auditor_welcome.html",
        link_token,
        "not a live link",
        BAD_LINK,
        detail={"with": "invitation link"},
    )


@bp.post("/logout")
def logout() -> Any:
    if not security.csrf_ok():
        abort(403, description=security.CSRF_MESSAGE)
    if security.auditor() is not None:  # a stranger cannot sign the auditors out
        security.sign_out("auditor")
    else:
        session.clear()
    return redirect(url_for("auditor.login"), 303)


def _day(name: str) -> date | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(
            gettext("%(value)s is not a date.", value=text[:40]),
            hint=gettext("Write dates as YYYY-MM-DD."),
        ) from None


def _filters() -> dict[str, Any]:
    """The table's filters from the query: business (client id), action, outcome, dates."""
    outcome = request.args.get("outcome") or None
    if outcome is not None and outcome not in DECISIONS:
        raise BadRequest(gettext("The outcome is allowed, refused or dropped."))
    return {
        "client": request.args.get("client") or None,
        "action": request.args.get("action") or None,
        "outcome": outcome,
        "since": _day("since"),
        "until": _day("until"),
        "skip": min(max(0, request.args.get("skip", 0, type=int) or 0), MAX_SKIP),
    }


def _row(index: int, text: str, leaf: bytes, names: dict[str, str]) -> dict[str, Any]:
    e = json.loads(text)
    client = e.get("client")
    actors = {"owner": gettext("the owner"), "anonymous": gettext("someone not signed in")}
    return {
        "index": index,
        "time": e["time"][:19].replace("T", " "),
        "who": names.get(client, client) if client else actors.get(e["actor"], e["actor"]),
        "action": e["action"],
        "outcome": e["decision"],
        "category": e.get("category", ""),
        "count": e.get("count", ""),
        "text": text,
        "leaf": _b64(leaf),
    }


@bp.get("")
@auditor_required
def log() -> Any:
    vault = current_vault()
    f = _filters()
    since, until = f["since"], f["until"]
    total, rows = db_audit.matching(
        vault.conn,
        client=f["client"],
        action=f["action"],
        decision=f["outcome"],
        since=since.isoformat() if since else None,
        until=(until + timedelta(days=1)).isoformat() if until else None,
        skip=f["skip"],
        limit=ROWS,
    )
    names = {c.client_id: c.name for c in store.list_clients(vault.conn)}
    grant = _live_grant()
    seen = auditor_check.last_seen(vault, grant.client_id) if grant else None
    args = {k: v.isoformat() if isinstance(v, date) else v for k, v in f.items() if v}
    args.pop("skip", None)
    return render_template(
        "auditor.html",
        size=vault.log.size(),
        total=total,
        rows=[_row(i, text, leaf, names) for i, text, leaf in rows],
        f=f,
        args=args,
        per_page=ROWS,
        businesses=sorted(names.items(), key=lambda kv: (kv[1].casefold(), kv[0])),
        actions=db_audit.actions(vault.conn),
        seen=seen,
        csrf=security.csrf_token(),
        checkpoints=vault.log.checkpoints()[-5:][::-1],
        verifier_key=vault.log_verifier_key(),
    )


def _logs_itself(view: Callable[..., Any]) -> Callable[..., Any]:
    view.logs_itself = True  # type: ignore[attr-defined]
    return view


@bp.post("/verify")
@auditor_required
@_logs_itself
def verify(grant: store.Grant) -> Any:
    """Verify now: the newest signed checkpoint, consistency from the last one this auditor
    verified, inclusion of the chosen entry; one ``auditor.verify`` entry remembers it."""
    vault = current_vault()
    index = request.form.get("entry", type=int)
    outcome = auditor_check.verify_now(vault, grant.client_id, index)
    vault.audit(
        auditor_check.ACTION,
        actor=f"client:{grant.client_id}",
        client_id=grant.client_id,
        grant_id=grant.id,
        purpose=grant.purpose,
        detail=outcome.remember,
    )
    return render_template("auditor_verify.html", outcome=outcome)


@bp.get("/bundle")
@auditor_required
def bundle() -> Any:
    """The whole log as ``pds audit export`` writes it, for ``pds-verify bundle``."""
    vault = current_vault()
    vault.log.checkpoint()
    out = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 - send_file closes it
    size = write_bundle(out, vault.log_source())
    out.seek(0)
    return send_file(
        out,
        mimetype="application/octet-stream",
        as_attachment=True,
        download_name=f"pds-audit-{size}.bundle",
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
