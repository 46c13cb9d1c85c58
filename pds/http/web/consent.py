"""The authorization endpoint: ``/oauth/authorize`` shows the consent page and takes the
owner's answer.

GET validates the request first (authlib): an unknown client or an unregistered redirect
URI gets an HTML error page (400), never a redirect; other errors go back to the redirect
URI with ``error``, ``state`` and ``iss``. A signed-out owner is sent to ``/login`` and back.

POST (same URL and query string) carries ``csrf_token`` and ``decision`` (``allow`` or
``deny``). With ``narrowing=1`` (the page's form always sends it), the ticked boxes say what
is approved: ``item`` (``read:<category>``, ``write:<category>``, ``audit:read``),
``field.<category>``, ``from.<category>``, ``to.<category>``, ``expires_days``; without it,
``allow`` approves exactly what was asked. The answer is a 303 to the redirect URI.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AccessDeniedError
from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext

from pds import clock
from pds.errors import BadRequest, ValidationError
from pds.http import errors, security
from pds.http.context import authorization_server, current_policies, current_vault
from pds.oauth import consent, controller, store
from pds.oauth import policy as grant_policy
from pds.oauth.access import Access, narrow
from pds.oauth.display import shown, website
from pds.oauth.grants import error_description
from pds.policy import RuleSet, label
from pds.vocabulary import SHOWN_ORDER, category_fields

bp = Blueprint("consent", __name__)

WORDS = {
    "read": lazy_gettext("Read your %(category)s"),
    "aggregate": lazy_gettext("Learn totals of your %(category)s (never a single record)"),
    "write": lazy_gettext("Add records to your %(category)s"),
}


@bp.route("/oauth/authorize", methods=["GET", "POST"])
def authorize() -> Any:
    srv = authorization_server()
    try:
        grant = srv.get_consent_grant(end_user=None)
    except OAuth2Error as error:
        if error.redirect_uri:
            return srv.error_redirect(None, error)
        # a request that cannot be answered has a title of its own
        return errors.page(
            400,
            error.description or error.error,
            gettext("The link that sent you here is broken; tell the business that sent you."),
            title=gettext("This request cannot be answered"),
        )
    if not security.signed_in():
        if not security.reading():
            raise errors.NotSignedIn(gettext("Sign in first, then answer the request again."))
        return redirect(url_for("owner.login", next=request.full_path.rstrip("?")))
    client: store.Client = grant.client
    requested: Access = grant.request.pds_access
    vault = current_vault()
    rules = _rules()
    view = grant_policy.apply(client.client_id, requested, rules, clock.utcnow())
    if view.refused_entirely:
        # nothing of it can ever be granted: answer without asking the owner
        consent.refused_by_policies(vault, client.client_id, requested, view)
        error = AccessDeniedError(
            description=error_description(f"refused by the owner's policies: {view.reason}"),
            state=grant.request.payload.state,
            redirect_uri=grant.redirect_uri,
        )
        return srv.error_redirect(grant.request, error)
    if security.reading():
        return _page(client, grant.redirect_uri, requested, view)
    if not security.csrf_ok():
        abort(403, description=security.CSRF_MESSAGE)
    decision = request.form.get("decision")
    if decision == "deny":
        consent.denied(vault, client.client_id, requested)
        return srv.create_authorization_response(grant=grant, grant_user=None)
    if decision != "allow":
        raise BadRequest(gettext("Press Allow or Deny."))
    try:
        approved = narrow(requested, request.form) if request.form.get("narrowing") else requested
    except ValidationError as exc:
        raise BadRequest(exc.message, hint=exc.hint) from None
    # what is stored: what the owner approved, within what the policies allow
    final = grant_policy.apply(client.client_id, approved, rules, clock.utcnow())
    if final.access is None:
        raise BadRequest(
            gettext("Nothing is ticked."), hint=gettext("Tick what you allow, or press Deny.")
        )
    # the grant, its receipt and its entry commit with the authorization code
    return consent.approve(
        vault,
        client.client_id,
        requested,
        final,
        lambda row: srv.create_authorization_response(grant=grant, grant_user=row),
    )


def _rules() -> RuleSet:
    return current_policies().current()


def _page(client: store.Client, redirect_uri: str, requested: Access, view: Any) -> Any:
    refusals: dict[str, str] = view.refusals
    allowed: Access = view.access
    items = []
    for name, whole in requested.categories.items():
        for action in SHOWN_ORDER:
            if action not in whole.actions:
                continue
            c = whole.for_action(action)  # read and totals each show their own limits
            key = f"{action}:{name}"
            item: dict[str, Any] = {
                "key": key,
                "action": action,
                "category": name,
                "label": str(WORDS[action]) % {"category": name},
                "refused": refusals.get(key),
                "fields": None,
                "policy_notes": [],
            }
            ok = allowed.categories.get(name)
            if (
                action != "write"
                and ok is not None
                and action in ok.actions
                and not item["refused"]
            ):
                ok = ok.for_action(action)
                withheld = view.withheld.get(name, {})
                for f, why in withheld.items():
                    item["policy_notes"].append(
                        gettext("the %(field)s field is withheld (%(why)s)", field=f, why=why)
                    )
                if name in view.time_notes:
                    item["policy_notes"].append(
                        gettext(
                            "records from %(day)s on only (%(why)s)",
                            day=ok.time_from,
                            why=view.time_notes[name],
                        )
                    )
                c = ok
            if action == "read":
                item["fields"] = list(c.fields) if c.fields else category_fields(name)
                item["time_from"], item["time_to"] = c.time_from, c.time_to
                item["range_text"] = _range_text(c.time_from, c.time_to)
                if c.fields:
                    item["note"] = gettext(
                        "Only these fields: %(fields)s.", fields=", ".join(c.fields)
                    )
            elif action == "aggregate":
                item["note"] = gettext(
                    "It can learn totals, counts and averages (%(dates)s), built from at "
                    "least a few records each; it never sees a single record.",
                    dates=_range_text(c.time_from, c.time_to),
                )
                if c.fields:
                    item["note"] += " " + gettext(
                        "Totals of these fields only: %(fields)s.", fields=", ".join(c.fields)
                    )
            else:
                item["note"] = gettext("It can add new records; it cannot change or delete yours.")
            items.append(item)
    if requested.audit:
        items.append(
            {
                "key": "audit:read",
                "action": "audit",
                "category": None,
                "label": gettext("Read the access log"),
                "note": gettext(
                    "It can read the access log (who used your data, when, for what) but no data."
                ),
                "refused": refusals.get("audit:read"),
                "fields": None,
            }
        )
    expires_in = allowed.expires_in
    days = max(1, expires_in // 86400)
    return render_template(
        "consent.html",
        client=client,
        about=_about(client),
        redirect_uri=redirect_uri,
        redirect_host=website(redirect_uri),
        items=items,
        purpose=requested.purpose,
        purpose_label=label(requested.purpose),
        expires_days=days,
        expires_on=(clock.today() + timedelta(seconds=expires_in)).isoformat(),
        expires_reason=view.expires_reason,
        csrf=security.csrf_token(),
        action=request.full_path.rstrip("?"),
    )


def _about(client: store.Client) -> dict[str, Any]:
    """What the business said about itself at registration (RFC 7591): its website, privacy
    policy and terms (each with its host in plain ASCII), contacts, postal address and phone;
    refused characters marked (``pds.oauth.display``)."""
    meta = store.client_metadata(current_vault().conn, client.client_id)
    contacts = meta.get("contacts") if isinstance(meta.get("contacts"), list) else []
    given = controller.details(meta)
    return {
        "website": website(meta.get("client_uri")),
        "policy": website(meta.get("policy_uri")),
        "terms": website(meta.get("tos_uri")),
        "contacts": [shown(str(c)) for c in contacts[:5]],
        "address": shown(", ".join(filter(None, (given.address, given.country))))
        if given.address
        else "",
        "phone": shown(given.phone),
    }


def _range_text(t_from: str | None, t_to: str | None) -> str:
    if t_from and t_to:
        return gettext("from %(start)s to %(end)s", start=t_from, end=t_to)
    if t_from:
        return gettext("from %(start)s on, including new ones", start=t_from)
    if t_to:
        return gettext("up to %(end)s", end=t_to)
    return gettext("all dates, including new ones")
