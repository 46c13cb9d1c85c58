"""Forgetting a category (crypto-shredding): records and key gone, nothing left in the file,
its write-ahead log or a backup made afterwards; other categories intact; the log verifies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pds.audit.verify import verify
from pds.cli import cli
from pds.db import transaction
from pds.errors import NotFound, ValidationError
from pds.rights import forget as forgetmod
from pds.settings import Settings
from pds.vault import SourceInfo, Vault
from pds.vault import records as recmod
from tests.conftest import FAST_KDF, PASSPHRASE
from tests.oauth_kit import seed


def secrets_of(vault: Vault, category: str) -> tuple[bytes, list[bytes]]:
    """The category's salt and a 24-byte chunk of each of its ciphertexts."""
    salt = vault.conn.execute(
        "SELECT salt FROM category_keys WHERE category = ?", (category,)
    ).fetchone()[0]
    cts = vault.conn.execute(
        "SELECT ciphertext FROM records WHERE category = ?", (category,)
    ).fetchall()
    return salt, [ct[8:32] for (ct,) in cts]


def raw(path: Path) -> bytes:
    return path.read_bytes() if path.exists() else b""


def test_forget_destroys_key_and_records_and_leaves_no_trace(vault: Vault, tmp_path: Path) -> None:
    seed(vault)  # six transactions from seed.csv, one energy reading from energy.csv
    salt, chunks = secrets_of(vault, "transactions")
    old_ct = vault.conn.execute(
        "SELECT id, nonce, ciphertext FROM records WHERE category = 'transactions' LIMIT 1"
    ).fetchone()
    vault.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    # Debian's SQLite zeroes deleted content by default; without that, forget must still.
    vault.conn.execute("PRAGMA secure_delete=OFF")
    db = vault.settings.db_path
    assert salt in raw(db)
    assert all(c in raw(db) for c in chunks)  # the check below can fail

    done = forgetmod.forget(vault, "transactions")

    assert done.as_dict() == {
        "category": "transactions",
        "records": 6,
        "key_version": 1,
        "checkpointed": True,
    }
    conn = vault.conn
    assert (
        conn.execute("SELECT count(*) FROM records WHERE category = 'transactions'").fetchone()[0]
        == 0
    )
    row = conn.execute(
        "SELECT version, salt, destroyed_at IS NOT NULL FROM category_keys "
        "WHERE category = 'transactions'"
    ).fetchone()
    assert row == (1, None, 1)
    assert [s["filename"] for s in vault.sources()] == ["energy.csv"]
    assert [r.payload["description"] for r in vault.records("energy")] == ["METER"]
    assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 0
    for path in (db, db.with_name("vault.db-wal")):
        data = raw(path)
        assert salt not in data, path
        assert not any(c in data for c in chunks), path

    (tmp_path / "bk").mkdir()
    backup = vault.backup(tmp_path / "bk" / "vault.db")
    data = backup.read_bytes()
    assert salt not in data
    assert not any(c in data for c in chunks)
    with Vault.open(Settings(home=backup.parent, kdf=FAST_KDF), PASSPHRASE) as old:
        assert list(old.records("transactions")) == []
        keyrow = old.conn.execute(
            "SELECT salt FROM category_keys WHERE category = 'transactions'"
        ).fetchone()
        assert keyrow == (None,)
        with transaction(old.conn):  # the only key the master key can now derive is new
            version, aead = old.keyring.category_aead(old.conn, "transactions")
        assert version == 2
        rid, nonce, ct = old_ct
        with pytest.raises(recmod.SealError):
            recmod.open_sealed(aead, rid, "transactions", 1, nonce, ct)

    entry = json.loads(conn.execute("SELECT entry FROM audit_log").fetchall()[-2][0])
    assert {k: entry[k] for k in ("action", "actor", "category", "count", "decision")} == {
        "action": "category.forget",
        "actor": "owner",
        "category": "transactions",
        "count": 6,
        "decision": "allowed",
    }
    assert set(entry) == {"v", "time", "actor", "action", "decision", "category", "count"}
    assert verify(vault.log_source()).ok


def test_the_category_can_be_imported_again_under_a_new_key(vault: Vault) -> None:
    seed(vault)
    forgetmod.forget(vault, "transactions")
    seed(vault)
    assert len(list(vault.records("transactions"))) == 6
    row = vault.conn.execute(
        "SELECT version, salt IS NOT NULL, destroyed_at FROM category_keys "
        "WHERE category = 'transactions'"
    ).fetchone()
    assert row == (2, 1, None)
    versions = vault.conn.execute(
        "SELECT DISTINCT key_version FROM records WHERE category = 'transactions'"
    ).fetchall()
    assert versions == [(2,)]


def test_another_process_never_seals_under_a_forgotten_key(vault: Vault) -> None:
    """A second worker (its own keyring, the key cached) writes after the first forgot the
    category: the record gets the new key version and stays readable."""
    seed(vault)
    with Vault.open(vault.settings, PASSPHRASE) as other:
        assert len(list(other.records("transactions"))) == 6  # caches the version-1 key
        forgetmod.forget(vault, "transactions")
        payload = {"date": "2024-05-01", "amount": "-1.00", "currency": "GBP", "description": "X"}
        with transaction(other.conn):
            rid, created = other.add_record(
                "transactions", "2024-05-01", payload, source="client:c1"
            )
        version = other.conn.execute(
            "SELECT key_version FROM records WHERE id = ?", (rid,)
        ).fetchone()[0]
        assert (created, version) == (True, 2)
        assert [r.payload["description"] for r in vault.records("transactions")] == ["X"]


def test_nothing_to_forget_and_unknown_category_change_nothing(vault: Vault) -> None:
    before = vault.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    with pytest.raises(NotFound) as err:
        forgetmod.forget(vault, "health")
    assert err.value.message == 'the vault holds nothing in "health"; nothing was forgotten'
    with pytest.raises(ValidationError) as bad:
        forgetmod.forget(vault, "secrets")
    assert bad.value.message == '"secrets" is not a category'
    assert vault.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == before


def test_a_failure_inside_the_transaction_leaves_the_vault_as_it_was(vault: Vault) -> None:
    seed(vault)
    vault.conn.execute("PRAGMA secure_delete=OFF")

    def broken(conn) -> None:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        vault.forget_category("transactions", broken)
    assert len(list(vault.records("transactions"))) == 6
    salt = vault.conn.execute(
        "SELECT salt FROM category_keys WHERE category = 'transactions'"
    ).fetchone()[0]
    assert isinstance(salt, bytes)
    assert vault.conn.execute("PRAGMA secure_delete").fetchone()[0] == 0


def test_forget_a_fulfilled_requests_source_unlinks_it(vault: Vault) -> None:
    from pds.rights import requests as reqmod

    seed(vault)
    reqmod.create(vault, "access", "Acme")
    reqmod.fulfil(vault, 1, 1)
    forgetmod.forget(vault, "transactions")
    r = reqmod.get(vault, 1)
    assert (r.status, r.fulfilled_by_source) == ("fulfilled", None)


# -- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def seeded_home(home: Path) -> Path:
    with Vault.create(Settings(home=home, kdf=FAST_KDF), PASSPHRASE) as v:
        seed(v)
        v.ingest(SourceInfo("test", "more.csv", b"more"), [])
    return home


def test_cli_forget_asks_for_the_name_again(runner: CliRunner, seeded_home: Path) -> None:
    wrong = runner.invoke(cli, ["forget", "transactions"], input="energy\n")
    assert wrong.exit_code == 1
    assert wrong.stderr.endswith('Error: "energy" is not "transactions"; nothing was forgotten\n')
    none = runner.invoke(cli, ["forget", "transactions"], input="")
    assert none.exit_code == 1
    assert none.stderr.endswith(
        "Error: no confirmation given; nothing was forgotten\nHint: Type the name, or pass --yes.\n"
    )
    st = json.loads(runner.invoke(cli, ["status", "--json"]).stdout)
    assert st["categories"] == {"energy": 1, "transactions": 6}
    ok = runner.invoke(cli, ["forget", "transactions"], input="transactions\n")
    assert ok.exit_code == 0, ok.output
    assert ok.stdout == (
        "Forgot transactions: 6 records deleted and their key destroyed.\n"
        "Backups made before now still hold it (sealed under the old key): delete them too.\n"
    )
    st = json.loads(runner.invoke(cli, ["status", "--json"]).stdout)
    assert st["categories"] == {"energy": 1}
    verified = runner.invoke(cli, ["audit", "verify"])
    assert verified.exit_code == 0, verified.output


def test_cli_forget_yes_json_and_errors(runner: CliRunner, seeded_home: Path) -> None:
    out = runner.invoke(cli, ["forget", "energy", "--yes", "--json"])
    assert json.loads(out.stdout) == {
        "category": "energy",
        "records": 1,
        "key_version": 1,
        "checkpointed": True,
    }
    again = runner.invoke(cli, ["forget", "energy", "--yes"])
    assert (again.exit_code, again.stderr) == (
        1,
        'Error: the vault holds nothing in "energy"; nothing was forgotten\n',
    )
    bad = runner.invoke(cli, ["forget", "secrets", "--yes"])
    assert bad.stderr.splitlines()[0] == 'Error: "secrets" is not a category'


def test_cli_backup_after_forget_holds_nothing_of_it(
    runner: CliRunner, seeded_home: Path, tmp_path: Path
) -> None:
    with Vault.open(Settings(home=seeded_home), PASSPHRASE) as v:
        salt, chunks = secrets_of(v, "transactions")
    runner.invoke(cli, ["forget", "transactions", "--yes"])
    out = runner.invoke(cli, ["backup", str(tmp_path / "after.db")])
    assert out.exit_code == 0, out.output
    data = (tmp_path / "after.db").read_bytes()
    assert salt not in data
    assert not any(c in data for c in chunks)


# -- the web form ---------------------------------------------------------------------------


def test_web_forget_needs_the_typed_name_and_csrf(kit, vault) -> None:
    from tests.oauth_kit import csrf

    seed(vault)
    kit.login()
    token = csrf(kit.http.get("/requests").text)
    forged = kit.http.post("/forget", data={"category": "energy", "confirm": "energy"})
    assert forged.status_code == 403
    wrong = kit.http.post(
        "/forget", data={"category": "energy", "confirm": "transactions", "csrf_token": token}
    )
    assert wrong.status_code == 422
    assert "type &#34;energy&#34; in the confirmation box to forget it; nothing was forgotten" in (
        wrong.text
    )
    assert len(list(vault.records("energy"))) == 1
    ok = kit.http.post(
        "/forget", data={"category": "energy", "confirm": "energy", "csrf_token": token}
    )
    assert ok.status_code == 303
    page = kit.http.get("/requests")
    assert "Forgot energy: 1 record deleted and their key destroyed." in page.text
    assert list(vault.records("energy")) == []


def test_forget_removes_rows_derived_from_the_category(vault: Vault) -> None:
    from pds.vault import Prepared
    from pds.vault.records import canonical

    profile = Prepared("profile", "2026-01-01", canonical({"name": "Ada"}), None, 0)
    wish = Prepared("intentions", "2026-01-01", canonical({"text": "new tariff"}), None, 0)
    vault.ingest(SourceInfo("test", "mine.json", b"mine"), [[profile, wish]])
    conn = vault.conn
    conn.execute("PRAGMA foreign_keys=OFF")  # a bare subscription, without client and grant
    with transaction(conn):
        conn.execute(
            "INSERT INTO profile_changes (seq, category, fields, at) VALUES "
            "(1, 'profile', '[\"name\"]', 'x'), (2, 'intentions', '[\"text\"]', 'x')"
        )
        conn.execute(
            "INSERT INTO deliveries (subscription_id, seq, attempt, status, next_attempt_at, "
            "updated_at) VALUES ('s1', 1, 1, 'pending', 0, 'x'), ('s1', 2, 1, 'pending', 0, 'x')"
        )
        conn.execute("INSERT INTO intention_expiry VALUES (2, '2026-06-30')")
    conn.execute("PRAGMA foreign_keys=ON")
    forgetmod.forget(vault, "profile")
    assert conn.execute("SELECT seq FROM profile_changes").fetchall() == [(2,)]
    assert conn.execute("SELECT seq FROM deliveries").fetchall() == [(2,)]
    assert conn.execute("SELECT record_id FROM intention_expiry").fetchall() == [(2,)]
    forgetmod.forget(vault, "intentions")
    for table in ("profile_changes", "deliveries", "intention_expiry", "records", "sources"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table  # noqa: S608
