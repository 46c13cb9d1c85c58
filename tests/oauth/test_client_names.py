"""A business's name and website as the owner sees them (pds.oauth.display): invisible and
text-reversing characters (U+202E and the other bidi controls, zero-width characters,
controls) are refused at registration and marked visibly wherever a name stored before is
shown; the consent page shows the business's website with its host in plain ASCII."""

from __future__ import annotations

import json
import unicodedata

import pytest

from pds.cli import cli
from pds.errors import ValidationError
from pds.oauth import admin, store
from pds.settings import load_settings
from pds.vault import Vault
from tests.conftest import PASSPHRASE
from tests.oauth_kit import CB, pkce

UNSAFE = ["\u202e", "\u202a", "\u2066", "\u2069", "\u200f", "\u200e", "\u061c", "\u200b"]
UNSAFE += ["\ufeff", "\u2028", "\n", "\x00", "\x1b", "\U000e0041"]
# blank, overlaying or space-like, of other categories
UNSAFE += ["\u3164", "\u2800", "\ufe0f", "\u0336", "\u00a0", "\u3000", "\u115f"]


def refused_name(ch: str, what: str = "client_name") -> str:
    name = unicodedata.name(ch, "a control character")
    return (
        f"{what} contains the invisible or text-reversing character [U+{ord(ch):04X}] "
        f"({name}); send it as it should read, without control or formatting characters"
    )


def register(kit, **doc):
    return kit.http.post("/oauth/register", json={"redirect_uris": [CB], **doc})


@pytest.mark.parametrize("ch", UNSAFE, ids=lambda c: f"U+{ord(c):04X}")
def test_registration_refuses_a_name_that_does_not_read_as_it_is(kit, vault, ch) -> None:
    before = (vault.log.size(), len(store.list_clients(vault.conn)))
    for name in (f"Acme Bank{ch}", f"{ch}Acme", f"Ac{ch}me{ch}"):
        resp = register(kit, client_name=name)
        assert resp.status_code == 400, name
        assert resp.json == {
            "error": "invalid_client_metadata",
            "error_description": refused_name(ch).replace('"', "'"),
        }
    assert (vault.log.size(), len(store.list_clients(vault.conn))) == before


@pytest.mark.parametrize(
    ("metadata", "description"),
    [
        ({"client_name": 5}, "client_name must be a string"),
        ({"client_name": ["Acme"]}, "client_name must be a string"),
        ({"software_id": 5}, "software_id must be a string"),
        ({"software_version": {"v": "1"}}, "software_version must be a string"),
        ({"client_name": "A" * 121}, "client_name is 121 characters long; keep it to 120"),
        ({"client_name": "A" * 100_000}, "client_name is 100,000 characters long; keep it to 120"),
        ({"contacts": ["x" * 255]}, "each of contacts must be 1 to 254 characters long"),
        ({"software_id": "x" * 2001}, "software_id holds 2,001 characters; keep each to 2,000"),
    ],
)
def test_registration_refuses_metadata_that_is_no_readable_text(
    kit, vault, metadata, description
) -> None:
    before = (vault.log.size(), len(store.list_clients(vault.conn)))
    for _ in range(2):
        resp = register(kit, **metadata)
        assert (resp.status_code, resp.json) == (
            400,
            {"error": "invalid_client_metadata", "error_description": description},
        )
    assert (vault.log.size(), len(store.list_clients(vault.conn))) == before
    made = register(kit, client_name="A" * 120, contacts=["ops@acme.example"])
    assert made.status_code == 201
    assert made.json["client_name"] == "A" * 120


def test_registration_refuses_hidden_characters_in_any_metadata(kit, vault) -> None:
    cases = [
        ({"contacts": ["ops@acme.example", "evil\u202e@x"]}, refused_name("\u202e", "contacts")),
        ({"software_id": "a\u2067b"}, refused_name("\u2067", "software_id")),
        (
            {"client_uri": "https://b\u0430nk.example/"},
            "client_uri must be an http or https URL in plain ASCII (an international host "
            "name in its xn-- form)",
        ),
        (
            {"policy_uri": "https://bank.example/\u202e"},
            refused_name("\u202e", "policy_uri"),
        ),
    ]
    for doc, message in cases:
        resp = register(kit, client_name="Acme", **doc)
        assert (resp.status_code, resp.json["error"]) == (400, "invalid_client_metadata"), doc
        assert resp.json["error_description"] == message.replace('"', "'"), doc
    assert store.list_clients(vault.conn) == []
    ok = register(
        kit, client_name="Caf\u00e9 \u00c5rhus \u0411\u0430\u043d\u043a \u05d1\u05e0\u05e7"
    )
    assert ok.status_code == 201, ok.text


def test_the_owner_cannot_add_such_a_name_either(vault) -> None:
    for ch in UNSAFE:
        with pytest.raises(ValidationError) as caught:
            admin.add_client(vault, f"Acme{ch}Bank", [CB])
        assert caught.value.message == refused_name(ch, "the name")
        assert caught.value.hint == "Type the business's name as it should read."
    assert store.list_clients(vault.conn) == []


def test_consent_page_shows_the_website_host_plainly(kit) -> None:
    resp = register(
        kit,
        client_name="Acme Bank",
        client_uri="https://www.ACME.example/about",
        policy_uri="https://legal.acme.example/privacy",
        tos_uri="https://legal.acme.example/terms",
        contacts=["ops@acme.example"],
    )
    assert resp.status_code == 201, resp.text
    kit.login()
    page = kit.http.get(kit.authorize_url(resp.json["client_id"], pkce()[1])).text
    assert (
        "<dt>Website</dt>\n  <dd><strong>www.acme.example</strong> "
        "(<code>https://www.ACME.example/about</code>)</dd>"
    ) in page
    assert (
        '<dt>Privacy policy</dt><dd><a href="https://legal.acme.example/privacy" '
        'rel="noreferrer">its privacy policy</a> on <strong>legal.acme.example</strong></dd>'
    ) in page
    assert (
        '<dt>Terms</dt><dd><a href="https://legal.acme.example/terms" rel="noreferrer">'
        "its terms of service</a> on <strong>legal.acme.example</strong></dd>"
    ) in page
    assert "<dt>Contact</dt><dd>ops@acme.example</dd>" in page
    bare = register(kit, client_name="Bare")
    page = kit.http.get(kit.authorize_url(bare.json["client_id"], pkce()[1])).text
    assert "<dt>Website</dt>\n  <dd>it gave none</dd>" in page
    assert "Privacy policy" not in page


RAW = "Acme \u202ekcoL yeK\u2069 Bank"
MARKED = "Acme [U+202E]kcoL yeK[U+2069] Bank"


def stored_before(vault: Vault, metadata: dict | None = None) -> str:
    """A client registered by an older pds, its name and website unchecked."""
    with vault.conn:
        client, _ = store.add_client(
            vault.conn,
            name=RAW,
            redirect_uris=[CB],
            auth_method="client_secret_basic",
            verified=False,
            metadata=metadata,
        )
    return client.client_id


def test_a_name_stored_before_is_marked_on_every_page(kit, vault) -> None:
    client_id = stored_before(
        vault, {"client_uri": "https://b\u0430nk.example/", "contacts": ["x\u202e@y"]}
    )
    kit.login()
    consent = kit.http.get(kit.authorize_url(client_id, pkce()[1])).text
    assert f"<h1>{MARKED} asks to use your data</h1>" in consent
    assert "<strong>xn--bnk-6cd.example</strong>" in consent
    assert "<dt>Contact</dt><dd>x[U+202E]@y</dd>" in consent
    home = kit.http.get("/").text
    assert f"<li>{MARKED} registered itself" in home
    kit.consent(kit.authorize_url(client_id, pkce()[1]))
    vault.audit("api.records.read", actor=f"client:{client_id}", client_id=client_id)
    pages = {
        "/": f"{MARKED}",
        "/grants": f'<td data-label="Business">{MARKED}</td>',
        "/grants/1/revoke": f"<h1>Revoke the grant to {MARKED}?</h1>",
        "/history": f">{MARKED}</option>",
        "/processing": f">{MARKED}</a>",
        f"/processing/{client_id}": f"<h1>Record of processing: {MARKED}</h1>",
    }
    for url, shown in pages.items():
        text = kit.http.get(url).text
        assert shown in text, url
        assert "\u202e" not in text, url
        assert "\u2069" not in text, url


def test_a_name_stored_before_is_marked_in_the_cli(runner, initialised, env) -> None:
    with Vault.open(load_settings(env), PASSPHRASE) as v:
        client_id = stored_before(v)
        from pds.oauth.access import parse_request

        with v.conn:
            store.create_grant(v.conn, client_id, parse_request("read:transactions", None))
    listed = runner.invoke(cli, ["clients", "list"])
    assert listed.output == (f"{client_id}  {MARKED} (confidential, unverified)  {CB}\n")
    as_json = json.loads(runner.invoke(cli, ["clients", "list", "--json"]).output)
    assert as_json[0]["name"] == MARKED
    grants = runner.invoke(cli, ["grants", "list"])
    assert grants.output.startswith(f"   1  {MARKED}  read:transactions  purpose: none stated")
    assert "\u202e" not in grants.output + listed.output
