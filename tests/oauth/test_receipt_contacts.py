"""The business as its consent receipts name it: contact, postal address, email and phone
from its registration (RFC 7591 ``contacts`` and pds's ``controller_*`` metadata, or the
owner's ``pds clients add``), empty only when it gave none, which the consent page says; bad
values refused with ``invalid_client_metadata`` and the reason."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc.jwk import OKPKey

from pds.cli import cli
from pds.oauth import receipts as rmod
from pds.oauth import store
from pds.settings import Settings
from pds.vault import Vault
from tests.conftest import PASSPHRASE
from tests.oauth_kit import CB, bearer

FULL = {
    "contacts": ["Data Protection Officer", "privacy@acme-energy.example"],
    "controller_address": "1 Meter Lane, Leeds LS1 4AP",
    "controller_country": "GB",
    "controller_phone": "+44 113 496 0000",
    "client_uri": "https://acme-energy.example/",
}


def register(kit, **metadata: Any) -> dict[str, Any]:
    resp = kit.http.post(
        "/oauth/register",
        json={"client_name": "Acme Energy", "redirect_uris": [CB], **metadata},
    )
    assert resp.status_code == 201, resp.json
    return resp.json


def receipt_claims(kit, made: dict[str, Any]) -> dict[str, Any]:
    tokens = kit.tokens(made["client_id"], made["client_secret"], scope="read:energy")
    got = kit.http.get("/api/v1/grant/receipt", headers=bearer(tokens["access_token"]))
    assert got.status_code == 200, got.json
    return rmod.verify(got.json["receipt"], OKPKey.import_key(got.json["key"]))


def consent_page(kit, client_id: str) -> str:
    kit.login()
    page = kit.http.get(kit.authorize_url(client_id, "x" * 43, scope="read:energy"))
    assert page.status_code == 200
    return page.text


def test_a_registration_with_address_and_phone_fills_every_controller_field(kit) -> None:
    made = register(kit, **FULL)
    assert {k: made[k] for k in FULL} == FULL  # echoed back, as RFC 7591 §3.2.1 asks
    claims = receipt_claims(kit, made)
    assert claims["piiControllers"] == [
        {
            "piiController": "Acme Energy",
            "piiControllerId": made["client_id"],
            "onBehalf": False,
            "contact": "Data Protection Officer, privacy@acme-energy.example",
            "address": {"streetAddress": "1 Meter Lane, Leeds LS1 4AP", "addressCountry": "GB"},
            "email": "privacy@acme-energy.example",
            "phone": "+44 113 496 0000",
            "piiControllerUrl": "https://acme-energy.example/",
        }
    ]


def test_a_registration_without_them_leaves_them_empty(kit) -> None:
    made = register(kit, contacts=["ops@acme-energy.example"])
    claims = receipt_claims(kit, made)
    assert claims["piiControllers"] == [
        {
            "piiController": "Acme Energy",
            "piiControllerId": made["client_id"],
            "onBehalf": False,
            "contact": "ops@acme-energy.example",
            "address": {"streetAddress": "", "addressCountry": ""},
            "email": "ops@acme-energy.example",
            "phone": "",
            "piiControllerUrl": "",
        }
    ]


def test_the_consent_page_shows_address_and_phone(kit) -> None:
    html = consent_page(kit, register(kit, **FULL)["client_id"])
    assert "<dt>Postal address</dt><dd>1 Meter Lane, Leeds LS1 4AP, GB</dd>" in html
    assert "<dt>Phone</dt><dd>+44 113 496 0000</dd>" in html
    assert "Acme Energy gave no" not in html


@pytest.mark.parametrize(
    ("metadata", "sentence"),
    [
        ({}, "Acme Energy gave no postal address or phone number."),
        ({"controller_phone": "0113 496 0000"}, "Acme Energy gave no postal address."),
        ({"controller_address": "1 Meter Lane, Leeds"}, "Acme Energy gave no phone number."),
    ],
)
def test_the_consent_page_says_plainly_what_the_business_did_not_give(
    kit, metadata: dict[str, str], sentence: str
) -> None:
    html = consent_page(kit, register(kit, **metadata)["client_id"])
    assert f'<p class="note">{sentence}</p>' in html
    assert html.count("Acme Energy gave no") == 1


PHONE_RULE = (
    "controller_phone must be a phone number: 5 to 15 digits, an optional leading +, "
    "and spaces, hyphens, dots or brackets between them"
)


@pytest.mark.parametrize(
    ("metadata", "description"),
    [
        ({"controller_phone": "call us"}, PHONE_RULE),
        ({"controller_phone": "(555) 555-DISC"}, PHONE_RULE),
        ({"controller_phone": "1234"}, PHONE_RULE),
        ({"controller_phone": "+44 113 496 0000 0000 0"}, PHONE_RULE),
        ({"controller_phone": "44++113"}, PHONE_RULE),
        ({"controller_phone": 441134960000}, "controller_phone must be a string"),
        (
            {"controller_address": "x" * 301},
            "controller_address is 301 characters long; keep it to 300",
        ),
        (
            {"controller_address": "12 / 34"},
            "controller_address must be a postal address, with at least one letter",
        ),
        (
            {"controller_address": ["1 Meter Lane"]},
            "controller_address must be a string",
        ),
        (
            {"controller_country": "gb"},
            "controller_country must be an ISO 3166-1 alpha-2 code in capitals, such as GB",
        ),
        (
            {"controller_country": "GBR"},
            "controller_country must be an ISO 3166-1 alpha-2 code in capitals, such as GB",
        ),
        ({"contacts": "privacy@acme.example"}, "contacts must be an array of strings"),
        ({"contacts": ["a@acme.example", 7]}, "contacts must be an array of strings"),
        ({"contacts": ["a@acme.example"] * 6}, "contacts lists 6; give at most 5"),
        ({"contacts": [" "]}, "each of contacts must be 1 to 254 characters long"),
        (
            {"controller_address": "1 Meter Lane\u202e, Leeds"},
            "controller_address contains the invisible or text-reversing character [U+202E] "
            "(RIGHT-TO-LEFT OVERRIDE); send it as it should read, without control or "
            "formatting characters",
        ),
        (
            {"controller_address": "1 Meter Lane\nLeeds"},
            "controller_address contains the invisible or text-reversing character [U+000A] "
            "(a control character); send it as it should read, without control or "
            "formatting characters",
        ),
    ],
)
def test_bad_contact_metadata_is_refused_by_name(kit, metadata: dict, description: str) -> None:
    before = len(store.list_clients(kit.vault.conn))
    resp = kit.http.post(
        "/oauth/register",
        json={"client_name": "Acme Energy", "redirect_uris": [CB], **metadata},
    )
    assert resp.status_code == 400
    assert resp.json == {"error": "invalid_client_metadata", "error_description": description}
    assert len(store.list_clients(kit.vault.conn)) == before


def test_the_owner_gives_them_with_pds_clients_add(runner, initialised) -> None:
    from pds.oauth.access import parse_request

    added = runner.invoke(
        cli,
        [
            "clients", "add", "--name", "Acme Energy", "--redirect-uri", CB,
            "--email", "privacy@acme-energy.example", "--address", "1 Meter Lane, Leeds",
            "--country", "GB", "--phone", "+44 113 496 0000", "--json",
        ],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    with Vault.open(Settings(home=initialised), PASSPHRASE) as v:
        client = store.list_clients(v.conn)[-1]
        grant = store.create_grant(v.conn, client.client_id, parse_request("read:energy", None))
        claims = rmod.verify(rmod.issue(v, grant).jws, rmod.signing_jwk(v))
    assert claims["piiControllers"][0] == {
        "piiController": "Acme Energy",
        "piiControllerId": client.client_id,
        "onBehalf": False,
        "contact": "privacy@acme-energy.example",
        "address": {"streetAddress": "1 Meter Lane, Leeds", "addressCountry": "GB"},
        "email": "privacy@acme-energy.example",
        "phone": "+44 113 496 0000",
        "piiControllerUrl": "",
    }
    refused = runner.invoke(
        cli, ["clients", "add", "--name", "Bolt", "--redirect-uri", CB, "--phone", "ring us"]
    )
    assert refused.exit_code == 1
    assert refused.output.splitlines()[0] == f"Error: {PHONE_RULE}"


def test_the_owner_gives_them_on_the_add_a_business_page(kit) -> None:
    from tests.oauth_kit import csrf

    kit.login()
    form = {
        "name": "Acme Energy",
        "redirect_uris": CB,
        "email": "privacy@acme-energy.example",
        "address": "1 Meter Lane, Leeds",
        "country": "GB",
        "phone": "+44 113 496 0000",
    }
    page = kit.http.get("/clients/new")
    made = kit.http.post("/clients/new", data={**form, "csrf_token": csrf(page.text)})
    assert made.status_code == 200
    client = store.list_clients(kit.vault.conn)[-1]
    assert store.client_metadata(kit.vault.conn, client.client_id) == {
        "contacts": ["privacy@acme-energy.example"],
        "controller_address": "1 Meter Lane, Leeds",
        "controller_country": "GB",
        "controller_phone": "+44 113 496 0000",
    }
    page = kit.http.get("/clients/new")
    bad = {**form, "name": "Bolt", "phone": "ring us", "csrf_token": csrf(page.text)}
    refused = kit.http.post("/clients/new", data=bad)
    assert refused.status_code == 422
    assert f'<p class="error" role="alert">Error: {PHONE_RULE}</p>' in refused.text
    assert 'value="ring us"' in refused.text  # the form keeps what was typed
    assert [c.name for c in store.list_clients(kit.vault.conn)] == ["Acme Energy"]
