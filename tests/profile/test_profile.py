"""The profile and intentions: schema, CLI, the /profile page, and the server's sender."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pds.cli import cli
from pds.errors import NotFound, ValidationError
from pds.profile import intentions, profile
from pds.vocabulary import category_fields
from pds.webhooks import delivery
from tests.oauth_kit import bearer, csrf
from tests.webhooks.test_propagation import Receiver, business, profile_grant, subscribe

SHOW_EMPTY = "".join(f"{name:<21}-\n" for name in profile.FIELDS)


def run(runner, *args: str):
    return runner.invoke(cli, list(args))


# -- the core -------------------------------------------------------------------------------


def test_profile_fields_are_what_grants_can_name() -> None:
    assert category_fields("profile") == (
        "name",
        "addresses",
        "email",
        "phone",
        "preferred_language",
        "contact_channel",
        "contact_hours",
        "accessibility_needs",
        "dietary_needs",
        "marketing",
    )
    assert category_fields("intentions") == (
        "text",
        "kind",
        "from_date",
        "until_date",
        "expires_at",
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {"phone": "07700 900123"},
            "profile.phone: must be an international number like +447700900123",
        ),
        (
            {"preferred_language": "english"},
            "profile.preferred_language: must be a BCP 47 language tag like en-GB",
        ),
        ({"email": "ada@"}, "profile.email: Not a valid email address."),
        (
            {"addresses": [{"lines": ["1 High St"], "country": "gb"}]},
            "profile.addresses.0.country: must be an ISO 3166 code like GB",
        ),
        ({"contact_hours": "9-5"}, "profile.contact_hours: must be a time range like 09:00-17:30"),
        (
            {"marketing": {"fax": True}},
            "profile.marketing.fax.key: Must be one of: email, phone, sms, post, app.",
        ),
        ({"surname": "L"}, "profile.surname: Unknown field."),
    ],
)
def test_bad_profiles_are_refused_and_change_nothing(vault, payload, message) -> None:
    profile.save(vault, {"name": "Ada"})
    before = vault.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    with pytest.raises(ValidationError) as exc:
        profile.save(vault, {"name": "Ada", **payload})
    assert exc.value.message == message
    assert profile.current(vault)["name"] == "Ada"
    assert vault.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == before


def test_one_current_profile_record_replaced_on_change(vault) -> None:
    assert profile.save(vault, {"name": "Ada", "preferred_language": "en-GB"}) == [
        "name",
        "preferred_language",
    ]
    assert profile.set_field(vault, "dietary_needs", ["vegetarian"]) == ["dietary_needs"]
    assert profile.set_field(vault, "name", "Ada") == []  # no change, nothing written
    assert profile.unset_field(vault, "preferred_language") == ["preferred_language"]
    rows = vault.conn.execute("SELECT count(*) FROM records WHERE category = 'profile'")
    assert rows.fetchone()[0] == 1
    assert profile.current(vault) == {
        **profile.empty(),
        "name": "Ada",
        "dietary_needs": ["vegetarian"],
    }
    changes = vault.conn.execute("SELECT category, fields FROM profile_changes ORDER BY seq")
    assert [(c, json.loads(f)) for c, f in changes] == [
        ("profile", ["name", "preferred_language"]),
        ("profile", ["dietary_needs"]),
        ("profile", ["preferred_language"]),
    ]


def test_intentions_validate_and_withdraw(vault) -> None:
    with pytest.raises(ValidationError) as exc:
        intentions.add(vault, {"text": "Move", "expires_at": "2000-01-01"})
    assert exc.value.message == "intention.expires_at: 2000-01-01 has already passed"
    with pytest.raises(ValidationError) as exc:
        intentions.add(
            vault,
            {
                "text": "Move",
                "expires_at": "2099-01-01",
                "from_date": "2099-06-01",
                "until_date": "2099-05-01",
            },
        )
    assert exc.value.message == "intention.until_date: from_date is after until_date"
    rid, created = intentions.add(
        vault, {"text": "Move", "kind": "move", "expires_at": "2099-01-01"}
    )
    assert created
    assert intentions.add(vault, {"text": "Move", "kind": "move", "expires_at": "2099-01-01"}) == (
        rid,
        False,
    )
    with pytest.raises(NotFound) as missing:
        intentions.withdraw(vault, rid + 100)
    assert missing.value.message == f"there is no intention with id {rid + 100}"
    intentions.withdraw(vault, rid)
    assert intentions.listed(vault) == []


def test_every_distinct_intention_is_kept(vault) -> None:
    told = [
        intentions.add(vault, {"text": f"Intention {n}", "expires_at": "2099-01-01"})
        for n in range(100)
    ]
    assert all(created for _, created in told)
    assert len({rid for rid, _ in told}) == 100
    again = intentions.add(vault, {"text": "Intention 7", "expires_at": "2099-01-01"})
    assert again == (told[7][0], False)
    assert [i["text"] for i in intentions.listed(vault)] == [f"Intention {n}" for n in range(100)]


CONTROL = "remove it (tab, line feed and carriage return are allowed)"


def test_control_characters_are_refused_in_profile_and_intentions(vault) -> None:
    for payload, message in [
        (
            {"name": "Ada\x00"},
            f"profile.name: contains the control character U+0000 at character 4; {CONTROL}",
        ),
        (
            {"addresses": [{"lines": ["1 High St", "Flat\x082"], "country": "GB"}]},
            "profile.addresses.0.lines.1: contains the control character U+0008 at character "
            f"5; {CONTROL}",
        ),
        (
            {"dietary_needs": ["vegan", "\x1f"]},
            f"profile.dietary_needs.1: contains the control character U+001F at character 1; {CONTROL}",
        ),
    ]:
        with pytest.raises(ValidationError) as exc:
            profile.save(vault, payload)
        assert exc.value.message == message
    with pytest.raises(ValidationError) as exc:
        intentions.add(vault, {"text": "Move\x00house", "expires_at": "2099-01-01"})
    assert exc.value.message == (
        f"intention.text: contains the control character U+0000 at character 5; {CONTROL}"
    )
    assert vault.status()["records"] == 0
    assert profile.save(vault, {"name": "Ada\tLovelace"}) == ["name"]  # a tab is text


# -- the CLI ----------------------------------------------------------------------------------


def test_cli_profile_show_set_unset_edit(runner, initialised, tmp_path: Path) -> None:
    assert run(runner, "profile", "show").output == SHOW_EMPTY
    assert run(runner, "profile", "set", "name", "Ada Lovelace").output == "Changed name.\n"
    assert run(runner, "profile", "set", "name", "Ada Lovelace").output == "No change.\n"
    needs = run(runner, "profile", "set", "dietary_needs", "vegan, no nuts")
    assert needs.output == "Changed dietary_needs.\n"
    shown = run(runner, "profile", "show").output.splitlines()
    assert shown[0] == "name                 Ada Lovelace"
    assert shown[8] == "dietary_needs        vegan, no nuts"
    home = '[{"label": "home", "lines": ["9 New Street"], "postcode": "YO1 7HH", "country": "GB"}]'
    assert run(runner, "profile", "set", "addresses", home).output == "Changed addresses.\n"
    run(runner, "profile", "set", "marketing", '{"email": true, "sms": false}')
    shown = run(runner, "profile", "show").output.splitlines()
    assert shown[1] == "addresses            home: 9 New Street, YO1 7HH, GB"
    assert shown[9] == "marketing            email: yes, sms: no"
    bad = run(runner, "profile", "set", "phone", "12345")
    assert bad.exit_code == 1
    assert bad.output == (
        "Error: profile.phone: must be an international number like +447700900123\n"
    )
    unknown = run(runner, "profile", "set", "shoe_size", "9")
    assert unknown.exit_code == 1
    assert unknown.output.splitlines() == [
        "Error: 'shoe_size' is not a profile field",
        "Hint: One of: " + ", ".join(profile.FIELDS) + ".",
    ]
    not_json = run(runner, "profile", "set", "addresses", "1 High St")
    assert not_json.output.splitlines()[0] == "Error: addresses must be JSON"
    assert run(runner, "profile", "unset", "dietary_needs").output == "Changed dietary_needs.\n"
    doc = tmp_path / "profile.json"
    doc.write_text(json.dumps({"name": "Ada", "email": "ada@example.org"}))
    edited = run(runner, "profile", "edit", "--file", str(doc), "--json")
    assert json.loads(edited.output) == {"changed": ["name", "addresses", "email", "marketing"]}
    data = json.loads(run(runner, "profile", "show", "--json").output)
    assert data == {**profile.empty(), "name": "Ada", "email": "ada@example.org"}
    doc.write_text("{nope")
    broken = run(runner, "profile", "edit", "--file", str(doc))
    assert broken.exit_code == 1
    assert broken.output.startswith(f"Error: {doc} is not JSON: ")


def test_cli_intentions_and_deliveries(runner, initialised) -> None:
    assert run(runner, "intentions", "list").output == "No intentions.\n"
    added = run(
        runner,
        "intentions",
        "add",
        "New energy tariff",
        "--kind",
        "switch",
        "--from",
        "2099-03-01",
        "--expires",
        "2099-03-31",
    )
    assert added.output == "Added intention 1 (shown until 2099-03-31).\n"
    assert run(runner, "intentions", "list").output == (
        "   1  switch  from 2099-03-01  until -  shown until 2099-03-31  New energy tariff\n"
    )
    late = run(runner, "intentions", "add", "Move", "--expires", "2000-01-01")
    assert late.exit_code == 1
    assert late.output.splitlines() == [
        "Error: intention.expires_at: 2000-01-01 has already passed",
        "Hint: Give the last day the intention should be shown, today or later.",
    ]
    assert run(runner, "intentions", "withdraw", "1").output == "Withdrew intention 1.\n"
    gone = run(runner, "intentions", "withdraw", "1")
    assert gone.output.splitlines() == [
        "Error: there is no intention with id 1",
        "Hint: See the ids with `pds intentions list`.",
    ]
    assert run(runner, "deliveries", "run").output == "Delivered 0, failed 0, dropped 0.\n"
    assert run(runner, "deliveries", "list").output == "No deliveries.\n"
    assert json.loads(run(runner, "deliveries", "list", "--json").output) == []


# -- the /profile page ------------------------------------------------------------------------


def form(page_html: str, **values: str) -> dict[str, str]:
    data = {"csrf_token": csrf(page_html), "address-0-country": ""}
    data.update(values)
    return data


def test_web_profile_edit_with_inline_errors_and_csrf(kit) -> None:
    assert kit.http.get("/profile").status_code == 302  # signed out: to the login page
    kit.login("/profile")
    page = kit.http.get("/profile")
    assert page.status_code == 200
    assert '<label for="name">Name</label>' in page.text
    no_csrf = kit.http.post("/profile", data={"name": "Mallory"})
    assert no_csrf.status_code == 403
    bad = kit.http.post("/profile", data=form(page.text, name="Ada", phone="0770"))
    assert bad.status_code == 422
    assert (
        '<p class="error" id="phone-error">must be an international number like +447700900123</p>'
        in bad.text
    )
    assert 'value="0770" aria-invalid="true" aria-describedby="phone-error"' in bad.text
    assert profile.current(kit.vault)["name"] is None  # nothing saved
    good = kit.http.post(
        "/profile",
        data=form(
            page.text,
            name="Ada",
            **{
                "address-0-lines": "9 New Street\nFlat 2",
                "address-0-postcode": "YO1 7HH",
                "address-0-country": "GB",
                "marketing.email": "1",
                "dietary_needs": "vegan\n",
            },
        ),
    )
    assert good.status_code == 303
    assert good.headers["Location"] == "/profile?saved=1"
    saved = profile.current(kit.vault)
    assert saved["name"] == "Ada"
    assert saved["dietary_needs"] == ["vegan"]
    assert saved["addresses"] == [
        {
            "label": None,
            "lines": ["9 New Street", "Flat 2"],
            "locality": None,
            "region": None,
            "postcode": "YO1 7HH",
            "country": "GB",
        }
    ]
    assert saved["marketing"] == {
        "email": True,
        "phone": False,
        "sms": False,
        "post": False,
        "app": False,
    }
    shown = kit.http.get("/profile?saved=1").text
    assert "Your profile is saved." in shown
    assert "9 New Street\nFlat 2</textarea>" in shown
    assert kit.audit_actions()[-1] == ("profile.update", "allowed")


def test_web_intentions_add_and_withdraw(kit) -> None:
    kit.login("/profile")
    page = kit.http.get("/profile")
    late = kit.http.post(
        "/profile/intentions", data=form(page.text, text="Move", expires_at="2000-01-01")
    )
    assert late.status_code == 422
    assert "intention.expires_at: 2000-01-01 has already passed" in late.text
    ok = kit.http.post(
        "/profile/intentions",
        data=form(page.text, text="Move", kind="move", expires_at="2099-01-01"),
    )
    assert ok.status_code == 303
    [item] = intentions.listed(kit.vault)
    assert (
        '<td data-label="What">Move</td><td data-label="Kind">move</td>'
        in kit.http.get("/profile").text
    )
    out = kit.http.post(f"/profile/intentions/{item['id']}/withdraw", data=form(page.text))
    assert out.status_code == 303
    assert intentions.listed(kit.vault) == []


# -- the server's sender thread ---------------------------------------------------------------


def test_the_server_sends_in_the_background(kit, monkeypatch) -> None:
    monkeypatch.setattr(delivery, "POLL_SECONDS", 0.05)
    # the receiver listens on 127.0.0.1: the owner's setting lets webhooks go there
    settings = kit.app.config["PDS_SETTINGS"].with_overrides(webhooks_allow_private=True)
    kit.app.config["PDS_SETTINGS"] = settings
    kit.app.config["PDS_DELIVERY_WORKER"] = True
    r = Receiver()
    try:
        token = business(kit, "Acme Energy", profile_grant())
        subscribe(kit, token, r.url)  # this request starts the sender
        profile.set_field(kit.vault, "name", "Ada")
        deadline = time.monotonic() + 10
        while not r.got and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(r.got) == 1
        page = kit.http.get("/api/v1/records?category=profile", headers=bearer(token)).json
        assert page["records"][0]["payload"]["name"] == "Ada"
    finally:
        delivery.stop_worker()
        r.close()
