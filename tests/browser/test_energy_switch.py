"""examples/energy-switch driven in Chromium end to end: a real `pds serve` on a demo vault
(its meter readings included), the example app started as its README says, and a person who
gives the app their vault's address, signs in to the vault, allows, and reads the comparison.

The page must show the exact kWh the vault holds for the 12 months asked for (summed here
from `pds records`, not from the app's code) and a verified consent receipt."""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.browser.conftest import Watch, pds, shot
from tests.servers import answers, free_port, running, serving
from tests.vault.test_durability import PASSPHRASE, pds_env

EXAMPLE = Path(__file__).parents[2] / "examples" / "energy-switch"


def last_12_months(today: date) -> tuple[date, date]:
    """The 12 whole months before today's."""
    until = today.replace(day=1) - timedelta(days=1)
    since = (until.replace(day=1) - timedelta(days=334)).replace(day=1)
    return since, until


def held_kwh(env: dict[str, str], since: date, until: date) -> tuple[int, Decimal]:
    """How many readings, and how many kWh, the vault holds from since to until."""
    found = json.loads(
        pds(env, "records", "--category", "energy", "--since", str(since), "--until", str(until),
            "--json")
    )  # fmt: skip
    assert {(r["payload"]["unit"], r["payload"]["commodity"]) for r in found} == {
        ("Wh", "electricity")
    }
    return len(found), sum(Decimal(r["payload"]["value"]) for r in found) / 1000


@pytest.fixture
def vault_and_app(tmp_path: Path, request: pytest.FixtureRequest):
    """`pds demo` (with --sandbox when asked) served, and the example app beside it."""
    sandbox = request.param
    port, app_port = free_port(), free_port()
    base, app = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{app_port}"
    # webhooks may go to the app on 127.0.0.1
    env = {**pds_env(tmp_path / "demo"), "PDS_ISSUER": base, "PDS_WEBHOOKS_ALLOW_PRIVATE": "1"}
    app_env = {k: v for k, v in os.environ.items() if not k.startswith("PDS_")}
    app_env["PORT"] = str(app_port)
    if sandbox:
        made = json.loads(
            pds(env, "demo", "--sandbox", "--redirect-uri", app + "/callback", "--json")
        )
        app_env.update(
            PDS_VAULT=base,
            PDS_CLIENT_ID=made["sandbox"]["client_id"],
            PDS_CLIENT_SECRET=made["sandbox"]["client_secret"],
        )
    else:
        pds(env, "demo")
    with (
        serving(env, port, tmp_path / "serve.log", workers=1),
        running(
            [sys.executable, str(EXAMPLE / "app.py")],
            tmp_path / "app.log",
            answers(app + "/"),
            env=app_env,
            what="the example app",
        ),
    ):
        yield base, app, env, tmp_path / "app.log", sandbox


@pytest.mark.slow
@pytest.mark.parametrize(
    "vault_and_app", [False, True], ids=["registers", "sandbox"], indirect=True
)
def test_compare_my_tariff(page, watch: Watch, vault_and_app) -> None:
    base, app, env, app_log, sandbox = vault_and_app
    since, until = last_12_months(date.today())
    readings, kwh = held_kwh(env, since, until)
    assert readings == (until - since).days + 1  # one reading a day in the demo

    page.goto(app + "/")
    assert page.locator("h1").inner_text() == "Compare my energy tariff"
    page.get_by_label("Your vault's address").fill(base)
    page.get_by_role("button", name="Connect my vault").click()

    # the vault: sign in as its owner, then the consent page
    page.wait_for_url(base + "/login?**", timeout=60_000)
    page.get_by_label("Passphrase").fill(PASSPHRASE)
    page.get_by_label("Passphrase").press("Enter")
    page.wait_for_url(base + "/oauth/authorize?**", timeout=60_000)
    name = "Sandbox test client" if sandbox else "Energy Switch (example)"
    assert page.locator("h1").inner_text() == f"{name} asks to use your data"
    # registered by the owner (the sandbox), or by itself: then the person is warned
    assert page.get_by_text("Unverified:").count() == (0 if sandbox else 1)
    asked = page.locator("main").inner_text()
    assert "Only these fields: start, duration, value, unit, commodity, flow." in asked
    assert f"(from {since} to {until})" in asked
    shot(page, f"energy-switch-consent-{'sandbox' if sandbox else 'registered'}")
    page.get_by_role("button", name="Allow").click()

    # back at the app
    page.wait_for_url(app + "/result", timeout=60_000)
    shot(page, f"energy-switch-result-{'sandbox' if sandbox else 'registered'}")
    assert page.locator("#total").inner_text() == (
        f"Electricity used in those 12 months: {kwh:,.3f} kWh"
    )
    assert page.locator("main > p").first.inner_text() == (
        f"From your vault at {base}: {readings} electricity readings from "
        f"{since:%Y-%m} to {until:%Y-%m}, read in 4 pages."
    )
    assert page.locator("#months tbody tr").count() == 12
    receipt = page.locator("#receipt").inner_text()
    assert re.fullmatch(
        r"Consent receipt [0-9a-f-]{36}: verified, signed by your vault\.", receipt
    ), receipt
    # the app subscribes if the vault offers change notifications for energy, and says so
    assert page.locator("#changes").inner_text() in {
        "Not subscribed to changes: the vault answered "
        "“categories.0: 'energy' has no change notifications; use profile or intentions”.",
        "Subscribed: the vault will tell this app when the readings change.",
    }
    assert watch.foreign(base) == [u for u in watch.requests if u.startswith(app + "/")]
    assert watch.problems == []
    log = app_log.read_text()
    assert "code=" not in log
    assert "GET /callback?… HTTP/1.1" in log
