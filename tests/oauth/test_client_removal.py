"""Removing a business (``pds clients remove``, the Businesses page's Remove button) and
turning open registration off (``PDS_OPEN_REGISTRATION=0``)."""

from __future__ import annotations

import json

import pytest

from pds.cli import cli
from pds.db import transaction
from pds.errors import ConfigError
from pds.http.app import create_app
from pds.oauth import admin, store
from pds.oauth import receipts as rmod
from pds.settings import load_settings
from pds.vault import Vault
from pds.webhooks import propagation
from tests.conftest import PASSPHRASE
from tests.oauth_kit import CB, basic, bearer, csrf, pkce, seed


def entries(vault) -> list[dict]:
    rows = vault.conn.execute("SELECT entry FROM audit_log ORDER BY idx").fetchall()
    return [json.loads(r[0]) for r in rows]


def count(vault, sql: str, *args) -> int:
    return vault.conn.execute(sql, args).fetchone()[0]


def business(kit, name: str, n_grants: int = 2) -> tuple[str, str, list[dict]]:
    """A client with ``n_grants`` live grants (tokens issued) and a webhook subscription."""
    client_id, secret = kit.add_client(name)
    tokens = [kit.tokens(client_id, secret, scope="read:transactions") for _ in range(n_grants)]
    grant = store.list_grants(kit.vault.conn)[-1]
    with transaction(kit.vault.conn):
        propagation.create(kit.vault, grant, "https://93.184.215.14/hook", ["transactions"])
    return client_id, secret, tokens


def test_removing_a_business_ends_its_grants_tokens_and_webhooks(kit, vault) -> None:
    seed(vault)
    client_id, secret, tokens = business(kit, "Shady Lender")
    other_id, other_secret, other_tokens = business(kit, "Acme Bank", 1)
    receipts = count(vault, "SELECT count(*) FROM receipts")
    log_size = vault.log.size()

    page = kit.http.get("/grants")
    assert f'href="/clients/{client_id}/remove">Remove…</a>' in page.text
    confirm = kit.http.get(f"/clients/{client_id}/remove")
    assert confirm.status_code == 200
    assert "<h1>Remove Shady Lender?</h1>" in confirm.text
    assert "its 2 grants (#1, #2) are revoked" in confirm.text
    assert "its 1 webhook subscription stops;" in confirm.text
    assert vault.log.size() == log_size  # asking is not doing
    done = kit.http.post(f"/clients/{client_id}/remove", data={"csrf_token": csrf(confirm.text)})
    assert (done.status_code, done.headers["Location"]) == (303, "/grants")

    # its tokens die, its refresh tokens and its client credentials no longer work
    for tok in tokens:
        api = kit.http.get(
            "/api/v1/records?category=transactions", headers=bearer(tok["access_token"])
        )
        assert api.status_code == 401
        refresh = kit.token(
            client_id, secret, grant_type="refresh_token", refresh_token=tok["refresh_token"]
        )
        assert (refresh.status_code, refresh.json["error"]) == (401, "invalid_client")
    verifier, challenge = pkce()
    asked = kit.http.get(kit.authorize_url(client_id, challenge))
    assert asked.status_code == 400
    assert "Location" not in asked.headers
    intro = kit.http.post(
        "/oauth/introspect",
        data={"token": tokens[0]["access_token"]},
        headers=basic(client_id, secret),
    )
    assert intro.status_code == 401

    # its grants end as revoked; its subscription stops; nothing else changes
    grants = store.list_grants(vault.conn, include_inactive=True)
    assert [(g.client_id == client_id, g.revoked_reason) for g in grants] == [
        (True, "the owner removed the business"),
        (True, "the owner removed the business"),
        (False, None),
    ]
    assert count(vault, "SELECT count(*) FROM tokens WHERE revoked_at IS NULL") == 1
    assert (
        count(
            vault,
            "SELECT count(*) FROM subscriptions WHERE client_id = ? AND deleted_at IS NULL",
            client_id,
        )
        == 0
    )
    assert count(vault, "SELECT count(*) FROM subscriptions WHERE deleted_at IS NULL") == 1
    assert count(vault, "SELECT count(*) FROM receipts") == receipts + 2  # one per grant ended
    removed = store.get_client(vault.conn, client_id)
    assert removed.removed_at is not None
    assert removed.secret_hash is None
    assert not removed.check_client_secret(secret)
    # one audit entry
    new = entries(vault)[log_size:]
    assert [e["action"] for e in new[1:]] == ["api.records.read"] * 2  # the refused calls
    assert [(e["action"], e["actor"], e["client"], e["detail"]) for e in new[:1]] == [
        (
            "client.remove",
            "owner",
            client_id,
            {
                "name": "Shady Lender",
                "verified": True,
                "grants_revoked": [1, 2],
                "subscriptions_stopped": 1,
            },
        )
    ]
    # the other business goes on
    api = kit.http.get(
        "/api/v1/records?category=transactions", headers=bearer(other_tokens[0]["access_token"])
    )
    assert api.status_code == 200
    assert kit.tokens(other_id, other_secret, scope="read:energy")["scope"] == "read:energy"

    # the Businesses page: its grants under its name, marked removed; no longer listed
    page = kit.http.get("/grants").text
    assert page.count('<td data-label="Business">Shady Lender (removed)</td>') == 2
    assert f"<code>{client_id}</code>" not in page
    assert f"<code>{other_id}</code>" in page

    # removing twice, or an unknown client
    again = kit.http.post(f"/clients/{client_id}/remove", data={"csrf_token": csrf(page)})
    assert again.status_code == 422
    assert f"client {client_id} was already removed at {removed.removed_at}" in again.text
    assert kit.http.get(f"/clients/{client_id}/remove").status_code == 422
    unknown = kit.http.get("/clients/pds-nobody/remove")
    assert unknown.status_code == 404
    assert "no client with id pds-nobody" in unknown.text
    assert [e["action"] for e in entries(vault)[log_size + 3 :]] == [
        "api.records.read",
        "grant.create",
        "token.issue",
    ]


def test_remove_without_csrf_or_from_another_site_changes_nothing(kit, vault) -> None:
    client_id, _, _ = business(kit, "Shady Lender", 1)
    log_size = vault.log.size()
    token = csrf(kit.http.get("/grants").text)
    assert kit.http.post(f"/clients/{client_id}/remove").status_code == 403
    evil = kit.http.post(
        f"/clients/{client_id}/remove",
        data={"csrf_token": token},
        headers={"Origin": "https://evil.test"},
    )
    assert evil.status_code == 403
    signed_out = kit.app.test_client().post(
        f"/clients/{client_id}/remove", data={"csrf_token": token}
    )
    assert signed_out.status_code in (401, 403)
    assert store.get_client(vault.conn, client_id).removed_at is None
    assert vault.log.size() == log_size


def test_a_removed_self_registered_business_leaves_the_home_page(kit, vault) -> None:
    made = kit.http.post("/oauth/register", json={"client_name": "Lurker", "redirect_uris": [CB]})
    client_id = made.json["client_id"]
    kit.login()
    assert "<li>Lurker registered itself" in kit.http.get("/").text
    admin.remove_client(vault, client_id)
    assert "Lurker" not in kit.http.get("/").text


def test_pds_clients_remove(runner, initialised, env) -> None:
    with Vault.open(load_settings(env), PASSPHRASE) as v:
        client, _ = admin.add_client(v, "Shady Lender", [CB])
        from pds.oauth.access import parse_request

        with transaction(v.conn):
            store.create_grant(v.conn, client.client_id, parse_request("read:energy", None))
    cid = client.client_id
    asked = runner.invoke(cli, ["clients", "remove", cid])
    assert (asked.exit_code, asked.output) == (
        1,
        f'Error: removing "Shady Lender" ({cid}) revokes 1 grant (its tokens stop working) '
        "and stops 0 webhook subscriptions\nHint: Pass --yes to remove it.\n",
    )
    listed = runner.invoke(cli, ["clients", "list"])
    assert listed.output == f"{cid}  Shady Lender (confidential)  {CB}\n"
    done = runner.invoke(cli, ["clients", "remove", cid, "--yes"])
    assert (done.exit_code, done.output) == (
        0,
        f'Removed "Shady Lender" ({cid}): 1 grant revoked, 0 webhook subscriptions stopped.\n',
    )
    listed = json.loads(runner.invoke(cli, ["clients", "list", "--json"]).output)
    assert listed[0]["removed_at"] is not None
    text = runner.invoke(cli, ["clients", "list"]).output
    assert text == (
        f"{cid}  Shady Lender (confidential, removed {listed[0]['removed_at']})  {CB}\n"
    )
    assert runner.invoke(cli, ["grants", "list", "--json"]).output == "[]\n"
    again = runner.invoke(cli, ["clients", "remove", cid, "--yes"])
    assert (again.exit_code, again.output) == (
        1,
        f"Error: client {cid} was already removed at {listed[0]['removed_at']}\n",
    )
    missing = runner.invoke(cli, ["clients", "remove", "pds-nobody", "--yes", "--json"])
    assert (missing.exit_code, missing.output) == (
        1,
        "Error: no client with id pds-nobody\nHint: See the ids with `pds clients list`.\n",
    )


def test_pds_clients_remove_json_after_confirming(runner, initialised, env, monkeypatch) -> None:
    with Vault.open(load_settings(env), PASSPHRASE) as v:
        client, _ = admin.add_client(v, "Acme", [CB])
    monkeypatch.setattr("pds.cli.clients._interactive", lambda: True)
    declined = runner.invoke(cli, ["clients", "remove", client.client_id], input="n\n")
    assert declined.exit_code == 1
    assert declined.output == (
        f'Remove "Acme" ({client.client_id})? This revokes 0 grants (its tokens stop working) '
        "and stops 0 webhook subscriptions. [y/N]: n\nAborted!\n"
    )
    with Vault.open(load_settings(env), PASSPHRASE) as v:
        assert store.get_client(v.conn, client.client_id).removed_at is None
    done = runner.invoke(cli, ["clients", "remove", client.client_id, "--json"], input="y\n")
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert (doc["client_id"], doc["grants_revoked"], doc["subscriptions_stopped"]) == (
        client.client_id,
        [],
        0,
    )


# -- open registration off ---------------------------------------------------------------------


@pytest.fixture
def closed(vault):
    app = create_app(vault.settings.with_overrides(open_registration=False), vault.keyring)
    yield app.test_client()
    for v in app.extensions["pds_vaults"].values():
        v.close()


def test_with_open_registration_off_nobody_registers(closed, vault) -> None:
    log_size = vault.log.size()
    for doc in ({"client_name": "Acme", "redirect_uris": [CB]}, {}, None):
        resp = closed.post("/oauth/register", json=doc)
        assert resp.status_code == 403
        assert resp.json == {
            "error": "access_denied",
            "error_description": "this vault does not take registrations (its owner turned "
            "open registration off); ask the owner to add you with `pds clients add`",
        }
        assert resp.headers["Cache-Control"] == "no-store"
    assert store.list_clients(vault.conn) == []
    assert vault.log.size() == log_size
    meta = closed.get("/.well-known/oauth-authorization-server").json
    assert "registration_endpoint" not in meta
    assert meta["token_endpoint"] == "http://127.0.0.1:8000/oauth/token"


def test_open_registration_is_on_by_default(kit) -> None:
    meta = kit.http.get("/.well-known/oauth-authorization-server").json
    assert meta["registration_endpoint"] == "http://127.0.0.1:8000/oauth/register"
    made = kit.http.post("/oauth/register", json={"client_name": "Acme", "redirect_uris": [CB]})
    assert made.status_code == 201


@pytest.mark.parametrize(
    ("value", "on"),
    [(None, True), ("", True), ("1", True), ("on", True), ("TRUE", True), (" yes ", True)]
    + [("0", False), ("off", False), ("False", False), ("no", False)],
)
def test_pds_open_registration_values(value, on) -> None:
    env = {"PDS_HOME": "/tmp/x"} | ({} if value is None else {"PDS_OPEN_REGISTRATION": value})
    assert load_settings(env).open_registration is on


def test_pds_open_registration_refuses_a_guess() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"PDS_OPEN_REGISTRATION": "maybe"})
    assert caught.value.message == "PDS_OPEN_REGISTRATION='maybe' is neither on nor off"
    assert caught.value.hint == "Set PDS_OPEN_REGISTRATION to 1 (on) or 0 (off)."


def test_removing_a_business_issues_one_withdraw_receipt_per_grant_it_ends(kit, vault) -> None:
    from pds.audit.verify import verify as verify_log

    client_id, _, _ = business(kit, "Shady Lender", 3)
    other_id, _, _ = business(kit, "Acme Bank", 1)
    admin.revoke_grant(vault, 2)  # ended before: it keeps its one withdraw receipt
    first = rmod.latest(vault.conn, 2)
    log_size = vault.log.size()
    removal = admin.remove_client(vault, client_id)
    assert removal.grants == [1, 3]
    key = rmod.public_key(rmod.signing_jwk(vault))
    kinds = {g: [r.kind for r in rmod.for_grant(vault.conn, g)] for g in (1, 2, 3, 4)}
    assert kinds == {
        1: ["grant", "withdraw"],
        2: ["grant", "withdraw"],
        3: ["grant", "withdraw"],
        4: ["grant"],
    }
    assert rmod.latest(vault.conn, 2) == first
    for grant_id in (1, 3):
        grant = store.get_grant(vault.conn, grant_id)
        withdraw = rmod.latest(vault.conn, grant_id)
        claims = rmod.verify(withdraw.jws, key)
        assert withdraw.created_at == grant.revoked_at
        assert (claims["pds"]["grant_id"], claims["pds"]["client_id"]) == (grant_id, client_id)
        assert claims["pds"]["withdrawn_at"] == grant.revoked_at
        assert claims["pds"]["withdrawn_reason"] == "the owner removed the business"
        assert claims["services"][0]["purposes"][0]["termination"] == (
            f"ended at {grant.revoked_at}: the grant was revoked"
        )
    # still one audit entry, and the log verifies
    assert [e["action"] for e in entries(vault)[log_size:]] == ["client.remove"]
    assert verify_log(vault.log_source()).ok
    assert store.get_client(vault.conn, other_id).removed_at is None
