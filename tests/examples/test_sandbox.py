"""`pds demo --sandbox`: the demo vault and one test client registered as the owner would,
its credentials printed on every run; and the demo's meter readings, which the example
business (examples/energy-switch) reads."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from pds.cli import cli
from pds.demo import daily_wh, demo_energy_days, load_demo, synthetic_greenbutton
from pds.importer import import_file
from pds.oauth import store
from pds.settings import load_settings
from pds.vault import Vault
from tests.conftest import PASSPHRASE

DEFAULT_URI = "http://127.0.0.1:5001/callback"
IMPORTED = (
    "  demo-current-account-midata.csv: 600 new, 0 already present\n"
    "  demo-contacts.vcf: 3 new, 0 already present\n"
    "  demo-calendar.ics: 3 new, 0 already present\n"
    "  demo-electricity-greenbutton.xml: 500 new, 0 already present\n"
)


def run(runner: CliRunner, *args: str):
    return runner.invoke(cli, list(args))


def saved(home: Path) -> dict[str, str]:
    return json.loads((home / "sandbox-client.json").read_text(encoding="utf-8"))


def clients(home: Path) -> list[store.Client]:
    with Vault.open(load_settings({"PDS_HOME": str(home)}), PASSPHRASE) as v:
        return store.list_clients(v.conn)


def test_a_test_client_registered_once_and_printed_every_time(
    runner: CliRunner, home: Path
) -> None:
    first = run(runner, "demo", "--sandbox")
    assert first.exit_code == 0, first.output
    creds = saved(home)
    assert first.stdout == (
        f"Created the demo vault at {home}: 1106 records.\n" + IMPORTED + "Sandbox test client "
        f"(confidential, redirect URI {DEFAULT_URI}): registered now.\n"
        f"client_id:     {creds['client_id']}\n"
        f"client_secret: {creds['client_secret']}\n"
    )
    assert (home / "sandbox-client.json").stat().st_mode & 0o777 == 0o600

    second = run(runner, "demo", "--sandbox", "--json")
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout) == {
        "home": str(home),
        "created": False,
        "records": 1106,
        "sandbox": {
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
            "redirect_uri": DEFAULT_URI,
            "redirect_uris": [DEFAULT_URI],
            "created": False,
            "added": False,
        },
    }
    third = run(runner, "demo", "--sandbox")
    assert third.stdout.splitlines()[-3:] == [
        f"Sandbox test client (confidential, redirect URI {DEFAULT_URI}): registered on an "
        "earlier run.",
        f"client_id:     {creds['client_id']}",
        f"client_secret: {creds['client_secret']}",
    ]

    (client,) = clients(home)  # one client, never a second
    assert (client.client_id, client.name, client.redirect_uris, client.verified) == (
        creds["client_id"],
        "Sandbox test client",
        (DEFAULT_URI,),
        True,
    )
    assert client.check_client_secret(creds["client_secret"]) is True
    assert client.check_client_secret(creds["client_secret"][:-1]) is False


def test_another_redirect_uri_is_added_to_the_same_client(runner: CliRunner, home: Path) -> None:
    mine = "http://127.0.0.1:9000/cb"
    first = run(runner, "demo", "--sandbox", "--redirect-uri", mine, "--json")
    assert json.loads(first.stdout)["sandbox"]["redirect_uris"] == [mine]
    creds = saved(home)
    again = run(runner, "demo", "--sandbox")  # the example business's default
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines()[-3:] == [
        f"Sandbox test client (confidential, redirect URIs {mine} {DEFAULT_URI}): registered "
        f"on an earlier run; {DEFAULT_URI} added now.",
        f"client_id:     {creds['client_id']}",
        f"client_secret: {creds['client_secret']}",
    ]
    third = run(runner, "demo", "--sandbox", "--redirect-uri", mine)
    assert third.stdout.splitlines()[-3] == (
        f"Sandbox test client (confidential, redirect URIs {mine} {DEFAULT_URI}): registered "
        "on an earlier run."
    )
    (client,) = clients(home)  # still one client, both URIs, each matched exactly
    assert (client.client_id, client.redirect_uris) == (creds["client_id"], (mine, DEFAULT_URI))
    assert client.check_redirect_uri(mine) is True
    assert client.check_redirect_uri(DEFAULT_URI) is True
    assert client.check_redirect_uri("http://127.0.0.1:9000/cb/") is False
    assert client.check_redirect_uri("http://127.0.0.1:9000/c") is False
    tail = json.loads(run(runner, "audit", "tail", "-n", "20", "--json").stdout)
    updates = [
        (e["action"], e["client"], e["detail"]) for e in tail if e["action"] == "client.update"
    ]
    assert updates == [("client.update", creds["client_id"], {"redirect_uri_added": DEFAULT_URI})]
    far = run(runner, "demo", "--sandbox", "--redirect-uri", "http://example.com/cb")
    assert (far.exit_code, far.stderr) == (
        1,
        "Error: redirect URI 'http://example.com/cb' uses http on a host that is not loopback; "
        "use https\nHint: Use https, or http on 127.0.0.1 or localhost.\n",
    )
    assert clients(home)[0].redirect_uris == (mine, DEFAULT_URI)


def test_a_removed_sandbox_client_is_replaced(runner: CliRunner, home: Path) -> None:
    run(runner, "demo", "--sandbox")
    old = saved(home)["client_id"]
    assert run(runner, "clients", "remove", old, "--yes").exit_code == 0
    again = run(runner, "demo", "--sandbox", "--json")
    new = saved(home)
    assert json.loads(again.stdout)["sandbox"] == {
        **new,
        "redirect_uri": DEFAULT_URI,
        "redirect_uris": [DEFAULT_URI],
        "created": True,
        "added": False,
    }
    assert new["client_id"] != old
    assert [(c.client_id, c.removed_at is None) for c in clients(home)] == [
        (old, False),
        (new["client_id"], True),
    ]


def test_the_sandbox_options_refused(runner: CliRunner, home: Path) -> None:
    alone = run(runner, "demo", "--redirect-uri", DEFAULT_URI)
    assert (alone.exit_code, alone.stderr) == (
        1,
        "Error: --redirect-uri is the sandbox client's\nHint: Add --sandbox.\n",
    )
    assert not home.exists()
    far = run(runner, "demo", "--sandbox", "--redirect-uri", "http://example.com/cb")
    assert (far.exit_code, far.stderr) == (
        1,
        "Error: redirect URI 'http://example.com/cb' uses http on a host that is not loopback; "
        "use https\nHint: Use https, or http on 127.0.0.1 or localhost.\n",
    )
    assert clients(home) == []
    assert not (home / "sandbox-client.json").exists()


# -- the demo's electricity meter -------------------------------------------------------------


def test_a_days_reading_depends_on_its_date_only() -> None:
    assert [daily_wh(date(2026, 1, 15)), daily_wh(date(2026, 7, 15))] == [12594, 5633]


def test_the_meter_feed_imports_as_one_reading_a_day(vault: Vault, tmp_path: Path) -> None:
    days = demo_energy_days(date(2026, 12, 7))
    assert (len(days), days[0], days[-1]) == (500, date(2025, 7, 25), date(2026, 12, 6))
    path = tmp_path / "meter.xml"
    path.write_text(synthetic_greenbutton(days[-2:]), encoding="utf-8")
    assert import_file(vault, path).connector == "greenbutton"
    found = [r.payload for r in vault.records("energy")]
    href = "https://meter.example/espi/1_1/resource/RetailCustomer/1/UsagePoint/1"
    assert found == [
        {
            "start": f"2026-12-0{d}T00:00:00Z",
            "duration": "86400",
            "value": str(daily_wh(date(2026, 12, d))),
            "unit": "Wh",
            "cost": None,
            "currency": None,
            "flow": "forward",
            "commodity": "electricity",
            "usage_point": href,
            "meter_reading": href + "/MeterReading/1",
            "quality": None,
        }
        for d in (5, 6)
    ]


def test_a_later_day_adds_that_day(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pds.clock.today", lambda: date(2026, 12, 7))
    first = load_demo(vault)[-1]
    monkeypatch.setattr("pds.clock.today", lambda: date(2026, 12, 8))
    second = load_demo(vault)[-1]
    assert [(s.new, s.duplicate) for s in (first, second)] == [(500, 0), (1, 499)]
    newest = list(vault.records("energy", since=date(2026, 12, 7)))
    assert [r.payload["start"] for r in newest] == ["2026-12-07T00:00:00Z"]


def test_the_demo_is_what_the_quickstart_says(vault: Vault, monkeypatch) -> None:
    monkeypatch.setattr("pds.clock.today", lambda: date(2026, 12, 7))
    load_demo(vault)
    days = [r.occurred_at[:10] for r in vault.records("transactions", newest=False)]
    assert (len(days), days[0], days[-1]) == (600, "2025-03-10", "2026-10-30")
    assert [len(list(vault.records(c))) for c in ("contacts", "events")] == [3, 3]
    quickstart = (Path(__file__).parents[2] / "docs" / "developers.md").read_text()
    assert (
        "(600 synthetic bank transactions, 10 March 2025 to 30 October\n2026; three contacts, "
        "three calendar events, and 500 days"
    ) in quickstart
