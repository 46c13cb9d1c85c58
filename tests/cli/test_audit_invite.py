"""`pds audit invite`: an auditor's grant, one-time link and token, with no OAuth on their
side; and `pds audit verify --url` with that token against a running vault."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server

from pds import clock
from pds.cli import cli
from pds.oauth import admin, store
from pds.vault import Vault
from tests.conftest import PASSPHRASE

T0 = 1_800_000_000  # 2027-01-15T08:00:00Z


@pytest.fixture
def cli_on(vault: Vault) -> CliRunner:
    """The CLI on the test vault (the one the ``app`` fixture serves)."""
    return CliRunner(
        env={
            "PDS_HOME": str(vault.settings.home),
            "PDS_PASSPHRASE": PASSPHRASE,
            "PDS_PASSPHRASE_FILE": "",
            "PDS_ISSUER": "",
            "PDS_AUDIT_TOKEN": "",
        }
    )


@pytest.fixture
def fixed(monkeypatch) -> None:
    """A fixed clock and known secrets: the token first, then the link's."""
    secrets = iter(["script-token-0123456789", "link-secret-0123456789"])
    monkeypatch.setattr(clock, "now", lambda: T0)
    monkeypatch.setattr(store, "new_secret", lambda: next(secrets))


def test_invite_prints_the_link_and_the_token_once(cli_on, vault, fixed) -> None:
    done = cli_on.invoke(cli, ["audit", "invite", "Ines Audit", "--url", "https://vault.example/"])
    assert done.exit_code == 0, done.output
    [client] = store.list_clients(vault.conn)
    assert done.output == (
        'Invited "Ines Audit" to read the access log until 2027-02-14T08:00:00Z '
        f"(grant 1, client {client.client_id}).\n"
        "Sign-in link for the auditor's page (works once, until 2027-01-22T08:00:00Z):\n"
        "  https://vault.example/auditor/welcome#link-secret-0123456789\n"
        "Token for scripts (audit:read; `pds audit verify --url` reads it from a\n"
        "--token-file or PDS_AUDIT_TOKEN):\n"
        "  script-token-0123456789\n"
        "Both are shown only now: pds keeps only their hashes. Send them privately.\n"
        "Revoke with `pds grants revoke 1`.\n"
    )
    assert (client.name, client.verified, client.redirect_uris) == ("Ines Audit", True, ())
    [grant] = admin.list_grants(vault)
    assert (grant.scope, grant.expires_at, grant.purpose) == ("audit:read", T0 + 30 * 86400, None)
    token = store.find_access_token(vault.conn, "script-token-0123456789")
    link = store.find_access_token(vault.conn, "link-secret-0123456789")
    assert (token.scope, token.expires_at) == ("audit:read", T0 + 30 * 86400)
    assert (link.scope, link.expires_at) == ("audit:signin", T0 + 7 * 86400)
    stored = vault.conn.execute("SELECT access_hash FROM tokens ORDER BY id").fetchall()
    assert [h for (h,) in stored] == [
        store.digest("script-token-0123456789"),
        store.digest("link-secret-0123456789"),
    ]
    tail = cli_on.invoke(cli, ["audit", "tail", "-n", "2", "--json"])
    entries = json.loads(tail.output)
    assert "0123456789" not in tail.output
    assert [(e["action"], e.get("client"), e.get("grant"), e.get("detail")) for e in entries] == [
        ("vault.init", None, None, None),
        (
            "auditor.invite",
            client.client_id,
            "1",
            {"days": 30, "name": "Ines Audit", "scope": "audit:read"},
        ),
    ]


def test_invite_as_json_and_with_the_issuer_as_address(cli_on, vault, fixed) -> None:
    done = cli_on.invoke(
        cli,
        ["audit", "invite", "Kontrolle GmbH", "--days", "3", "--json"],
        env={"PDS_ISSUER": "https://pds.example"},
    )
    assert (done.exit_code, done.stderr) == (0, "")
    [client] = store.list_clients(vault.conn)
    assert json.loads(done.output) == {
        "name": "Kontrolle GmbH",
        "client_id": client.client_id,
        "grant_id": 1,
        "expires_at": "2027-01-18T08:00:00Z",
        "link": "https://pds.example/auditor/welcome#link-secret-0123456789",
        "link_expires_at": "2027-01-18T08:00:00Z",  # a link never outlives its grant
        "token": "script-token-0123456789",
    }


def test_invite_without_an_issuer_links_to_the_local_address(cli_on, fixed) -> None:
    done = cli_on.invoke(cli, ["audit", "invite", "Local", "--json"])
    assert done.exit_code == 0
    assert json.loads(done.stdout)["link"] == (
        "http://127.0.0.1:8000/auditor/welcome#link-secret-0123456789"
    )
    assert done.stderr == (
        "Note: the link uses http://127.0.0.1:8000 (PDS_ISSUER is not set); pass --url with "
        "the address the auditor reaches\n"
    )


def test_invite_with_an_address_says_no_note(cli_on, vault, fixed) -> None:
    given = cli_on.invoke(cli, ["audit", "invite", "A", "--url", "https://vault.example"])
    assert (given.exit_code, given.stderr) == (0, "")


@pytest.mark.parametrize(
    ("args", "code", "error"),
    [
        (
            ["   "],
            1,
            "Error: the auditor's name is empty\nHint: Give the auditor's name.\n",
        ),
        (
            ["Ines", "--url", "ftp://vault.example"],
            1,
            "Error: ftp://vault.example is not an http(s) address\n"
            "Hint: Pass --url https://your-vault.example.\n",
        ),
        (
            ["Ines", "--days", "366"],
            2,
            "Error: Invalid value for '--days': '366' is not a whole number from 1 to 365\n",
        ),
        (
            ["Ines", "--days", "0"],
            2,
            "Error: Invalid value for '--days': '0' is not a whole number from 1 to 365\n",
        ),
    ],
)
def test_invite_refusals(cli_on, vault, args: list[str], code: int, error: str) -> None:
    done = cli_on.invoke(cli, ["audit", "invite", *args])
    assert done.exit_code == code
    assert done.output.endswith(error)
    assert store.list_clients(vault.conn) == []
    assert vault.log.size() == 1  # vault.init only: nothing was invited


@pytest.fixture
def served(app) -> Iterator[str]:
    """The app on a real socket (127.0.0.1, a free port) in a thread; its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def test_verify_url_works_with_the_invited_token(cli_on, vault, served, tmp_path: Path) -> None:
    made = cli_on.invoke(cli, ["audit", "invite", "Ines Audit", "--json", "--url", served])
    invited = json.loads(made.output)
    token_file = tmp_path / "token"
    token_file.write_text(invited["token"] + "\n")
    done = cli_on.invoke(
        cli, ["audit", "verify", "--url", served, "--token-file", str(token_file), "--json"]
    )
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert (report["ok"], report["problems"]) == (True, [])
    # vault.init, auditor.invite, then the calls of the check: key and checkpoint (signed
    # at size 3), then the entries it read (4: its own call is logged after the page).
    assert (report["entries"], report["newest_checkpoint_size"]) == (4, 3)
    assert [json.loads(text)["action"] for _, text, _ in vault.log.entries(1, 5)] == [
        "auditor.invite",
        "api.audit.key",
        "api.audit.checkpoint",
        "api.audit.entries",
    ]
    by_env = cli_on.invoke(
        cli, ["audit", "verify", "--url", served], env={"PDS_AUDIT_TOKEN": invited["token"]}
    )
    assert by_env.exit_code == 0, by_env.output
    assert by_env.output.splitlines()[2:] == [
        "Entries:     7",
        "Checkpoints: 1 signed, newest at size 6",
        "OK: every entry hashes to its leaf, every checkpoint is validly signed and matches "
        "the entries.",
        "Note: entry 6 was logged after the newest signed checkpoint, so no signature covers "
        "it yet (normal for a running vault, which signs one within 1000 entries or 5 "
        "minutes); a bundle must not have such entries.",
    ]
    admin.revoke_grant(vault, invited["grant_id"])
    gone = cli_on.invoke(cli, ["audit", "verify", "--url", served, "--token-file", str(token_file)])
    assert gone.exit_code == 1
    assert gone.output.startswith(f"Error: {served}/audit/key answered 401")
