"""Drive the OAuth flow through Flask's test client: a business and the owner, in one."""

from __future__ import annotations

import base64
import json
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from flask import Flask
from werkzeug.test import TestResponse

from pds.oauth import admin
from pds.vault import SourceInfo, Vault

from .conftest import PASSPHRASE
from .factories import prepared, transaction

CB = "https://acme.example/cb"
ISSUER = "http://127.0.0.1:8000"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, create_s256_code_challenge(verifier)


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, html
    return m.group(1)


def seed(vault: Vault) -> list[int]:
    """Six transactions, 2024-01-05 .. 2024-06-05, and one energy reading."""
    items = [
        prepared(transaction(f"2024-0{m}-05", f"-{m}.00", f"SHOP {m}", reference=f"R{m}"))
        for m in range(1, 7)
    ]
    vault.ingest(SourceInfo("test", "seed.csv", b"seed"), [items])
    energy = prepared(transaction("2024-02-01", "1.00", "METER"))
    energy = energy.__class__("energy", energy.occurred_at, energy.plain, None, 0)
    vault.ingest(SourceInfo("test", "energy.csv", b"energy"), [[energy]])
    rows = vault.conn.execute("SELECT id FROM records ORDER BY id").fetchall()
    return [r[0] for r in rows]


class Kit:
    def __init__(self, app: Flask, vault: Vault) -> None:
        self.app = app
        self.vault = vault
        self.http = app.test_client()

    def add_client(
        self, name: str = "Acme Bank", uris: tuple[str, ...] = (CB,), public: bool = False
    ) -> tuple[str, str | None]:
        client, secret = admin.add_client(self.vault, name, list(uris), public=public)
        return client.client_id, secret

    def authorize_url(self, client_id: str, challenge: str | None, **params: Any) -> str:
        q: dict[str, Any] = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": CB,
            "scope": "read:transactions",
            "state": "st-123",
        }
        if challenge is not None:
            q.update(code_challenge=challenge, code_challenge_method="S256")
        q.update(params)
        return "/oauth/authorize?" + urlencode({k: v for k, v in q.items() if v is not None})

    def login(self, next_: str = "/") -> TestResponse:
        page = self.http.get("/login", query_string={"next": next_})
        return self.http.post(
            "/login",
            data={"passphrase": PASSPHRASE, "csrf_token": csrf(page.text), "next": next_},
        )

    def consent(self, url: str, **form: Any) -> TestResponse:
        """Sign in if needed, open the consent page and answer it."""
        page = self.http.get(url)
        if page.status_code == 302 and "/login" in page.headers["Location"]:
            assert self.login(url).status_code == 303
            page = self.http.get(url)
        assert page.status_code == 200, page.text
        data = {"csrf_token": csrf(page.text), "decision": "allow", **form}
        return self.http.post(url, data=data)

    def code(self, client_id: str, challenge: str, form: dict | None = None, **params: Any) -> str:
        resp = self.consent(self.authorize_url(client_id, challenge, **params), **(form or {}))
        assert resp.status_code == 303, resp.text
        q = query(resp.headers["Location"])
        assert "code" in q, q
        return q["code"]

    def token(self, client_id: str, secret: str | None, **form: Any) -> TestResponse:
        headers = basic(client_id, secret) if secret else {}
        if not secret:
            form.setdefault("client_id", client_id)
        return self.http.post("/oauth/token", data=form, headers=headers)

    def redeem(
        self, client_id: str, secret: str | None, code: str, verifier: str, **form: Any
    ) -> TestResponse:
        form = {"redirect_uri": CB, "code_verifier": verifier, **form}
        return self.token(client_id, secret, grant_type="authorization_code", code=code, **form)

    def tokens(self, client_id: str, secret: str | None, **params: Any) -> dict[str, Any]:
        verifier, challenge = pkce()
        form = params.pop("form", None)
        code = self.code(client_id, challenge, form, **params)
        resp = self.redeem(client_id, secret, code, verifier)
        assert resp.status_code == 200, resp.text
        return resp.json

    def audit_actions(self) -> list[tuple[str, str]]:
        rows = self.vault.conn.execute("SELECT entry FROM audit_log ORDER BY idx").fetchall()
        return [(json.loads(r[0])["action"], json.loads(r[0])["decision"]) for r in rows]
