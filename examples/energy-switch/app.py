"""Compare my energy tariff: a small business app that reads a person's electricity meter
readings from their pds vault, with their consent, through pds_client.

1. The person gives their vault's address; the app discovers the vault (RFC 8414) and
   registers itself there (RFC 7591), or uses the credentials it was given (the sandbox's).
2. It asks for 12 months of ``energy`` readings, only the fields it needs, for one stated
   purpose, for 30 days; the person approves on their vault's consent page.
3. Back at /callback it redeems the code, reads the readings page after page, prices them on
   example tariffs, tries to subscribe to changes, and verifies the consent receipt.

State: the browser's cookie (Flask's signed session) holds only a random visit id; the
visit's tokens and results stay in this process's memory, and are lost when it stops.
Run: ``python app.py`` (see README.md).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from datetime import date, timedelta

from flask import Flask, redirect, render_template, request, session, url_for
from pds_client import (
    Access,
    ApiError,
    Client,
    PdsClientError,
    ReceiptError,
    WebhookError,
    verify_receipt,
    verify_webhook,
)
from tariffs import compare

NAME = "Energy Switch (example)"
FIELDS = ["start", "duration", "value", "unit", "commodity", "flow"]
PURPOSE = "dpv:ServiceProvision"  # the comparison is the service the person asks for
GRANT_DAYS = 30

# Sandbox credentials (`pds demo --sandbox`), for the vault at PDS_VAULT only; any other vault
# gets a dynamic registration.
SANDBOX = {
    "vault": os.environ.get("PDS_VAULT", "").rstrip("/"),
    "client_id": os.environ.get("PDS_CLIENT_ID"),
    "client_secret": os.environ.get("PDS_CLIENT_SECRET"),
}

app = Flask(__name__)
app.secret_key = os.environ.get("SECRET_KEY") or secrets.token_bytes(32)
app.config["SESSION_COOKIE_SAMESITE"] = "Lax"  # no cookie on another site's form post

registrations: dict[str, tuple[str, str]] = {}  # vault -> (client_id, client_secret)
receipt_keys: dict[str, dict] = {}  # vault -> its receipt key, pinned when first seen
visits: dict[str, dict] = {}  # visit id (in the cookie) -> this visit's state
hook_secrets: dict[str, str] = {}  # subscription id -> its signing secret
hook_events: list[dict] = []  # webhooks received (verified), newest last


class _NoQueryStrings(logging.Filter):
    """The callback's query holds the authorization code: keep it out of the access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.args = tuple(
            re.sub(r"\?\S*", "?…", a) if isinstance(a, str) else a for a in record.args or ()
        )
        return True


logging.getLogger("werkzeug").addFilter(_NoQueryStrings())
app.jinja_env.filters["kwh"] = lambda d: f"{d:,.3f} kWh"
app.jinja_env.filters["pounds"] = lambda d: f"£{d:,.2f}"


def the_period(today: date) -> tuple[date, date]:
    """The 12 whole months before this one."""
    until = today.replace(day=1) - timedelta(days=1)
    year, month = (until.year - 1, until.month + 1) if until.month < 12 else (until.year, 1)
    return date(year, month, 1), until


def visit() -> dict:
    """This browser's visit (a new one if the cookie names none we know)."""
    vid = session.get("visit")
    if vid not in visits:
        vid = session["visit"] = secrets.token_urlsafe(16)
        visits[vid] = {}
    return visits[vid]


def connect(vault_url: str, callback: str) -> Client:
    """The client for this vault: discovered, and registered once per vault."""
    vault = Client.discover(vault_url, redirect_uri=callback)  # its issuer must be vault_url
    if vault.issuer == SANDBOX["vault"] and SANDBOX["client_id"]:
        return Client(
            vault.metadata,
            client_id=SANDBOX["client_id"],
            client_secret=SANDBOX["client_secret"],
            redirect_uri=os.environ.get("PDS_REDIRECT_URI", callback),
        )
    if vault.issuer in registrations:
        client_id, secret = registrations[vault.issuer]
        return Client(
            vault.metadata, client_id=client_id, client_secret=secret, redirect_uri=callback
        )
    answer = vault.register(NAME, [callback])  # the vault shows the person it is unverified
    registrations[vault.issuer] = (answer["client_id"], answer["client_secret"])
    return vault


@app.get("/")
def start():
    return render_template("start.html", vault=SANDBOX["vault"], period=the_period(date.today()))


@app.post("/connect")
def ask():
    here = visit()
    since, until = the_period(date.today())
    try:
        vault = connect(request.form.get("vault", "").strip(), url_for("callback", _external=True))
        asked = vault.authorization_url(
            [
                Access(
                    "energy",
                    fields=FIELDS,
                    since=since,
                    until=until,
                    purpose=PURPOSE,
                    expires_in=timedelta(days=GRANT_DAYS),
                )
            ]
        )
    except PdsClientError as e:
        return render_template("start.html", vault=request.form.get("vault"), error=e), 400
    here.clear()
    here.update(vault=vault, request=asked, period=(since, until))
    return redirect(asked.url)


@app.get("/callback")
def callback():
    here = visit()
    if "request" not in here:
        return render_template("start.html", error="This visit asked for nothing; start here."), 400
    vault: Client = here["vault"]
    try:
        vault.exchange(request.url, here.pop("request"))  # checks iss and state first
        here["result"] = read_and_compare(vault, *here["period"])
    except PdsClientError as e:
        return render_template("start.html", vault=vault.issuer, error=e), 400
    return redirect(url_for("result"))


def read_and_compare(vault: Client, since: date, until: date) -> dict:
    pages = list(vault.pages("energy", since=since, until=until, page_size=100))
    readings = [r for page in pages for r in page.records]
    grant = vault.grant()
    return {
        "vault": vault.issuer,
        "comparison": compare(readings, since, until),
        "pages": len(pages),
        "grant": grant,
        "changes": subscribe(vault),
        "receipt": checked_receipt(vault, grant["id"]),
    }


def subscribe(vault: Client) -> str:
    """Ask the vault for a webhook when the readings change; say what happened."""
    try:
        sub = vault.subscribe(url_for("webhook", _external=True), ["energy"])
    except ApiError as e:
        return f"Not subscribed to changes: the vault answered “{e.detail}”."
    hook_secrets[sub.id] = sub.secret
    return "Subscribed: the vault will tell this app when the readings change."


def checked_receipt(vault: Client, grant_id: int) -> dict:
    """The grant's consent receipt, verified with the vault's key as first seen (a real
    business stores that key with the vault's address)."""
    body = vault.get("/api/v1/grant/receipt")
    key = receipt_keys.setdefault(vault.issuer, body["key"])
    try:
        receipt = verify_receipt(body["receipt"], key, client_id=vault.client_id, grant_id=grant_id)
    except ReceiptError as e:
        return {"verified": False, "problem": str(e), "jws": body["receipt"]}
    return {"verified": True, "receipt": receipt, "jws": body["receipt"]}


@app.get("/result")
def result():
    found = visit().get("result")
    if found is None:
        return redirect(url_for("start"))
    return render_template("result.html", r=found, hooks=len(hook_events))


@app.post("/webhook")
def webhook():
    """A change notification from a vault: kept only if one of our subscriptions signed it
    (a real app would now read what changed)."""
    for secret in hook_secrets.values():
        try:
            hook_events.append(verify_webhook(secret, request.headers, request.get_data()))
            return "", 204
        except WebhookError:
            continue
    return "not signed by a subscription of this app", 400


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "5001")))
