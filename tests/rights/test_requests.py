"""Data-rights requests: the Art. 12(3) deadline, the letters, the lifecycle through the CLI
(``pds requests``, ``pds import --fulfils``, ``pds grants revoke --request-erasure``) and the
``/requests`` page."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from pds.cli import cli
from pds.errors import NotFound, ValidationError
from pds.http.app import create_app
from pds.rights import requests as reqmod
from pds.settings import Settings
from pds.vault import Prepared, SourceInfo, Vault
from pds.vault.records import canonical
from tests.conftest import FAST_KDF, PASSPHRASE, fixture
from tests.oauth_kit import Kit, csrf, seed

SPEC = fixture("midata/midata-spec-example.csv")
PROFILE = {"name": "Ada Lovelace", "email": "ada@example.org", "phone": "+44 20 7946 0000"}


def add_profile(vault: Vault, payload: dict) -> None:
    item = Prepared("profile", "2026-01-01", canonical(payload), None, 0)
    vault.ingest(SourceInfo("test", "profile.json", b"profile"), [[item]])


def revoked_grant(kit: Kit, vault: Vault) -> int:
    """A grant of Acme Bank's to transactions and energy, revoked by the owner."""
    client_id, secret = kit.add_client("Acme Bank")
    kit.tokens(client_id, secret, scope="read:transactions read:energy")
    grant_id = vault.conn.execute("SELECT max(id) FROM grants").fetchone()[0]
    from pds.oauth import admin

    admin.revoke_grant(vault, grant_id)
    return grant_id


# -- the deadline ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "due"),
    [
        ("2026-01-31", "2026-02-28"),
        ("2024-01-31", "2024-02-29"),
        ("2026-03-31", "2026-04-30"),
        ("2026-05-10", "2026-06-10"),
        ("2026-12-15", "2027-01-15"),
        ("2026-12-31", "2027-01-31"),
    ],
)
def test_due_date_is_one_month_later_clamped_to_month_end(sent: str, due: str) -> None:
    assert reqmod.due_date(date.fromisoformat(sent)) == date.fromisoformat(due)


def test_lifecycle_open_overdue_fulfilled(vault: Vault) -> None:
    r = reqmod.create(
        vault, "access", "Acme Bank", sent_on=date(2026, 1, 31), today=date(2026, 2, 2)
    )
    assert (r.id, r.status, r.due_on) == (1, "open", date(2026, 2, 28))
    assert not r.overdue(date(2026, 2, 28))
    assert r.overdue(date(2026, 3, 1))
    assert reqmod.list_requests(vault, overdue_only=True, today=date(2026, 2, 28)) == []
    late = reqmod.list_requests(vault, overdue_only=True, today=date(2026, 3, 1))
    assert [x.id for x in late] == [1]
    source = vault.ingest(SourceInfo("test", "acme.csv", b"acme"), [[_tx()]]).source_id
    done = reqmod.fulfil(vault, 1, source)
    assert (done.status, done.fulfilled_by_source) == ("fulfilled", source)
    assert not done.overdue(date(2026, 3, 1))
    assert reqmod.list_requests(vault, overdue_only=True, today=date(2026, 3, 1)) == []
    actions = [
        json.loads(e)["action"] for (e,) in vault.conn.execute("SELECT entry FROM audit_log")
    ]
    assert actions[-3:] == ["request.create", "import", "request.fulfil"]
    entry = json.loads(vault.conn.execute("SELECT entry FROM audit_log").fetchall()[-1][0])
    assert entry["detail"] == {"request": 1, "kind": "access", "source": source}
    assert "Acme" not in json.dumps(entry)


def _tx() -> Prepared:
    from tests.factories import prepared, transaction

    return prepared(transaction())


def test_future_sent_on_and_bad_kind_are_refused(vault: Vault) -> None:
    with pytest.raises(ValidationError, match=r"^the date sent, 2026-03-02, is in the future$"):
        reqmod.create(vault, "access", "Acme", sent_on=date(2026, 3, 2), today=date(2026, 3, 1))
    with pytest.raises(ValidationError, match=r"^'rectify' is not a kind of request"):
        reqmod.create(vault, "rectify", "Acme")
    with pytest.raises(ValidationError, match=r"^the business's name is empty$"):
        reqmod.create(vault, "access", "  ")
    with pytest.raises(NotFound, match=r"^no client with id pds-nobody$"):
        reqmod.create(vault, "access", "Acme", client_id="pds-nobody")
    assert vault.conn.execute("SELECT count(*) FROM rights_requests").fetchone()[0] == 0


ACCESS_LETTER = """\
Ada Lovelace
ada@example.org

31 January 2026

To: Acme Bank
Subject: Subject access request under Article 15 GDPR

Dear Data Protection Officer,

I am writing to ask for a copy of all the personal data you hold about me, under my right \
of access in Article 15 of the General Data Protection Regulation (GDPR).

Please also tell me the purposes for which you process my data, the categories of data \
concerned, who you have disclosed it to, how long you will keep it, and where you got it \
from if not from me (Article 15(1)).

Please send the copy in a structured, commonly used and machine-readable format, such as \
CSV or JSON (Articles 15(3) and 20), by e-mail to ada@example.org.

You must answer without undue delay and at the latest within one month of receiving this \
request (Article 12(3)), that is by 28 February 2026.

Yours faithfully,
Ada Lovelace
"""


def test_access_letter_exact_text_from_profile(vault: Vault) -> None:
    add_profile(vault, {"name": "Someone Earlier", "email": "old@example.org"})
    item = Prepared("profile", "2026-01-15", canonical(PROFILE), None, 0)
    vault.ingest(SourceInfo("test", "profile2.json", b"p2"), [[item]])
    r = reqmod.create(vault, "access", "Acme Bank", sent_on=date(2026, 1, 31))
    assert reqmod.letter(vault, r) == ACCESS_LETTER


def test_letter_without_profile_has_placeholders(vault: Vault) -> None:
    r = reqmod.create(vault, "access", "Acme Bank", sent_on=date(2026, 1, 31))
    text = reqmod.letter(vault, r)
    assert text.startswith("[your name]\n[your e-mail address]\n\n31 January 2026\n")
    assert "by e-mail to [your e-mail address]." in text
    assert text.endswith("Yours faithfully,\n[your name]\n")


def test_erasure_letter_names_the_grant_categories_and_revocation_day(kit, vault) -> None:
    seed(vault)
    add_profile(vault, PROFILE)
    grant_id = revoked_grant(kit, vault)
    r = reqmod.erasure_for_grant(vault, grant_id)
    assert (r.kind, r.business, r.grant_id, r.sent_on) == (
        "erasure",
        "Acme Bank",
        grant_id,
        date.today(),
    )
    assert r.client_id == vault.conn.execute("SELECT client_id FROM clients").fetchone()[0]
    revoked = reqmod.long_date(datetime.now(UTC).date())
    body = reqmod.letter(vault, r).split("\n\n")
    assert body[2] == "To: Acme Bank\nSubject: Request for erasure under Article 17 GDPR"
    assert body[4] == (
        f"On {revoked} I withdrew the access I had given you, through my personal data store, "
        f"to my data in these categories: transactions and energy (grant {grant_id}). I now "
        "ask you to erase all the "
        "personal data about me that you received through that access, under my right to "
        "erasure in Article 17 of the General Data Protection Regulation (GDPR); I have "
        "withdrawn my consent (Article 17(1)(b))."
    )
    assert body[5] == (
        "Please confirm to me in writing when the data has been erased, and tell the others "
        "you have disclosed it to, as Article 19 requires."
    )


def test_erasure_for_an_active_grant_is_refused(kit, vault) -> None:
    client_id, secret = kit.add_client("Acme Bank")
    kit.tokens(client_id, secret, scope="read:transactions")
    with pytest.raises(ValidationError) as err:
        reqmod.create(vault, "erasure", "Acme Bank", grant_id=1)
    assert err.value.message == "grant 1 is still active; the business may still read your data"
    assert err.value.hint == "Revoke it first: `pds grants revoke 1 --request-erasure`."
    with pytest.raises(ValidationError, match=r"^only an erasure request names a grant$"):
        reqmod.create(vault, "access", "Acme Bank", grant_id=1)


# -- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def fast_home(home: Path) -> Path:
    """A vault at ``home`` with a cheap KDF (its parameters are stored in the vault)."""
    Vault.create(Settings(home=home, kdf=FAST_KDF), PASSPHRASE).close()
    return home


def run(runner: CliRunner, *args: str, input: str | None = None):
    return runner.invoke(cli, list(args), input=input)


def test_cli_new_prints_due_date_and_letter(runner: CliRunner, fast_home: Path) -> None:
    out = run(runner, "requests", "new", "access", "Acme Bank", "--sent-on", "2026-01-31")
    assert out.exit_code == 0, out.output
    first, blank, letter = out.stdout.partition("\n\n")
    assert first == (
        "Request 1: access to Acme Bank, sent 2026-01-31, answer due by 2026-02-28 (open)."
    )
    assert letter.startswith("[your name]\n[your e-mail address]\n\n31 January 2026\n")
    shown = run(runner, "requests", "show", "1", "--json")
    doc = json.loads(shown.stdout)
    assert {k: doc[k] for k in ("id", "kind", "business", "sent_on", "due_on", "status")} == {
        "id": 1,
        "kind": "access",
        "business": "Acme Bank",
        "sent_on": "2026-01-31",
        "due_on": "2026-02-28",
        "status": "open",
    }
    assert doc["letter"] == letter


def test_cli_dsar_fulfilled_by_import(runner: CliRunner, fast_home: Path) -> None:
    run(runner, "requests", "new", "access", "Nationwide", "--sent-on", "2020-01-31")
    run(runner, "requests", "new", "access", "Acme", "--sent-on", date.today().isoformat())
    listed = run(runner, "requests", "list")
    due = reqmod.due_date(date.today()).isoformat()
    assert listed.stdout == (
        "   1  access   Nationwide  sent 2020-01-31  due 2020-02-29  open (overdue)\n"
        f"   2  access   Acme  sent {date.today().isoformat()}  due {due}  open\n"
    )
    overdue = run(runner, "requests", "list", "--overdue", "--json")
    assert [r["id"] for r in json.loads(overdue.stdout)] == [1]
    out = run(runner, "import", str(SPEC), "--fulfils", "1")
    assert out.exit_code == 0, out.output
    assert out.stdout == (
        "midata-spec-example.csv: 6 new, 0 already present, 0 rejected (midata)\n"
        "Request 1 (Nationwide) fulfilled by import 1.\n"
    )
    listed = run(runner, "requests", "list")
    assert listed.stdout.splitlines()[0] == (
        "   1  access   Nationwide  sent 2020-01-31  due 2020-02-29  fulfilled by import 1"
    )
    assert run(runner, "requests", "list", "--overdue").stdout == "No overdue requests.\n"
    again = run(runner, "import", str(SPEC), "--fulfils", "1")
    today = datetime.now(UTC).date().isoformat()
    assert again.exit_code == 1
    assert again.stderr == (
        f"Error: request 1 is already fulfilled on {today}\n"
        "Hint: Only an open request can be fulfilled or withdrawn; see `pds requests list`.\n"
    )
    as_json = run(runner, "import", str(SPEC), "--fulfils", "2", "--json")
    doc = json.loads(as_json.stdout)
    assert (doc["new"], doc["fulfilled"]["status"]) == (0, "fulfilled")
    assert doc["fulfilled"]["fulfilled_by_source"] is None


def test_cli_fulfils_refused_before_importing(
    runner: CliRunner, fast_home: Path, tmp_path: Path
) -> None:
    unknown = run(runner, "import", str(SPEC), "--fulfils", "9")
    assert unknown.exit_code == 1
    assert unknown.stderr == (
        "Error: no request with id 9\nHint: See the ids with `pds requests list`.\n"
    )
    run(runner, "requests", "new", "erasure", "Acme")
    erasure = run(runner, "import", str(SPEC), "--fulfils", "1")
    assert erasure.stderr == (
        "Error: request 1 asks for erasure; an imported file cannot fulfil it\n"
        "Hint: When the business confirms the erasure: `pds requests fulfil 1`.\n"
    )
    run(runner, "requests", "new", "access", "Acme")
    two = run(runner, "import", str(SPEC), str(SPEC), "--fulfils", "2")
    assert two.stderr.splitlines()[0] == (
        "Error: --fulfils links one file to request 2, but 2 were given"
    )
    folder = run(runner, "import", str(tmp_path), "--fulfils", "2")
    assert folder.stderr.splitlines()[0] == (
        f"Error: --fulfils links one file to request 2, but {tmp_path} is a folder"
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Type,Merchant/Description,Debit/Credit,Balance\r\nnot,a,row\r\n")
    failed = run(runner, "import", str(bad), "--fulfils", "2")
    assert failed.exit_code == 1
    status = json.loads(run(runner, "status", "--json").stdout)
    assert status["records"] == 0
    assert json.loads(run(runner, "requests", "show", "2", "--json").stdout)["status"] == "open"


def test_cli_errors_are_one_line(runner: CliRunner, fast_home: Path) -> None:
    shown = run(runner, "requests", "show", "9")
    assert (shown.exit_code, shown.stderr) == (
        1,
        "Error: no request with id 9\nHint: See the ids with `pds requests list`.\n",
    )
    bad = run(runner, "requests", "new", "access", "Acme", "--sent-on", "2026-02-30")
    assert bad.exit_code == 2
    assert bad.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--sent-on': \"2026-02-30\" is not a date like 2024-03-31"
    )
    run(runner, "requests", "new", "access", "Acme")
    nosource = run(runner, "requests", "fulfil", "1")
    assert nosource.stderr == (
        "Error: request 1 is fulfilled by the file the business sent back\n"
        "Hint: Import it with `pds import FILE --fulfils 1`, or give --source.\n"
    )
    missing = run(runner, "requests", "fulfil", "1", "--source", "7")
    assert missing.stderr == (
        "Error: no imported file with source id 7\n"
        "Hint: `pds import --json FILE` prints the source id of each file it imports.\n"
    )
    assert (
        run(runner, "requests", "withdraw", "1").stdout == "Request 1 (access, Acme) withdrawn.\n"
    )
    closed = run(runner, "requests", "withdraw", "1")
    assert closed.stderr.splitlines()[0] == "Error: request 1 is already withdrawn"


def test_cli_revoke_with_request_erasure(runner: CliRunner, home: Path) -> None:
    settings = Settings(home=home, kdf=FAST_KDF)
    with Vault.create(settings, PASSPHRASE) as vault:
        app = create_app(settings, vault.keyring)
        kit = Kit(app, vault)
        client_id, secret = kit.add_client("Acme Bank")
        kit.tokens(client_id, secret, scope="read:transactions")
        for v in app.extensions["pds_vaults"].values():
            v.close()
    out = run(runner, "grants", "revoke", "1", "--request-erasure")
    assert out.exit_code == 0, out.output
    assert out.stdout == (
        "Revoked grant 1; its tokens no longer work.\n"
        "Erasure request 1 started: `pds requests show 1`.\n"
    )
    doc = json.loads(run(runner, "requests", "show", "1", "--json").stdout)
    assert (doc["kind"], doc["business"], doc["grant_id"], doc["client_id"]) == (
        "erasure",
        "Acme Bank",
        1,
        client_id,
    )
    assert "to my data in these categories: transactions (grant 1)" in doc["letter"]
    done = run(runner, "requests", "fulfil", "1")
    assert done.stdout == "Request 1 (erasure, Acme Bank) fulfilled.\n"


# -- the web page ---------------------------------------------------------------------------


def test_requests_page_needs_the_owner(kit) -> None:
    page = kit.http.get("/requests")
    assert page.status_code == 302
    assert "/login" in page.headers["Location"]
    assert kit.http.post("/requests", data={"kind": "access"}).status_code == 401


def test_requests_page_create_fulfil_withdraw_with_csrf(kit, vault) -> None:
    kit.login()
    page = kit.http.get("/requests")
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "<script" not in page.text
    assert "style=" not in page.text
    token = csrf(page.text)
    form = {"kind": "access", "business": "Acme Bank", "sent_on": "2020-01-31"}
    forged = kit.http.post("/requests", data={**form, "csrf_token": "forged"})
    assert forged.status_code == 403
    assert vault.conn.execute("SELECT count(*) FROM rights_requests").fetchone()[0] == 0
    made = kit.http.post("/requests", data={**form, "csrf_token": token})
    assert made.status_code == 303
    assert made.headers["Location"].endswith("/requests?opened=1")
    shown = kit.http.get("/requests?opened=1")
    assert "Request 1 started: send the letter below to Acme Bank." in shown.text
    assert '<strong class="badge overdue">overdue</strong>' in shown.text
    assert "<details open>" in shown.text
    assert (
        "within one month of receiving this request (Article 12(3)), that is by 29 February 2020."
        in shown.text
    )
    source = vault.ingest(SourceInfo("test", "acme.csv", b"acme"), [[_tx()]]).source_id
    page = kit.http.get("/requests")
    assert f'<option value="{source}">{source}: acme.csv (' in page.text
    huge = kit.http.post("/requests/1/fulfil", data={"source": "9" * 20, "csrf_token": token})
    assert huge.status_code == 422
    assert f"&#34;{'9' * 20}&#34; is not an import id" in huge.text
    done = kit.http.post("/requests/1/fulfil", data={"source": str(source), "csrf_token": token})
    assert done.status_code == 303
    assert reqmod.get(vault, 1).fulfilled_by_source == source
    again = kit.http.post("/requests/1/withdraw", data={"csrf_token": token})
    assert again.status_code == 409
    assert "request 1 is already fulfilled on" in again.text
    bad = kit.http.post(
        "/requests",
        data={"kind": "access", "business": "X", "sent_on": "soon", "csrf_token": token},
    )
    assert bad.status_code == 422
    assert "&#34;soon&#34; is not a date like 2024-03-31" in bad.text
    reqmod.create(vault, "access", "Beta")
    gone = kit.http.post("/requests/2/withdraw", data={"csrf_token": token})
    assert gone.status_code == 303
    assert "Request 2 (Beta) withdrawn." in kit.http.get("/requests").text
    assert reqmod.get(vault, 2).status == "withdrawn"


def test_the_cli_offers_exactly_the_request_kinds() -> None:
    from pds.cli.rights import requests_group

    kind = next(p for p in requests_group.commands["new"].params if p.name == "kind")
    assert tuple(kind.type.choices) == reqmod.KINDS
