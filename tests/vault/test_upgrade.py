"""`pds upgrade`: a vault made by an older pds is backed up, then migrated, and nothing is lost.

The old vault is ``tests/fixtures/vaults/schema-3/vault.db``, made by pds itself at schema 3
(its README says how); every test works on a copy of it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from pds import db as dbmod
from pds.cli import cli
from pds.db import SCHEMA_VERSION
from pds.errors import VaultLocked
from pds.settings import Settings
from pds.vault import restore
from pds.vault import upgrade as upgrade_module
from tests.conftest import PASSPHRASE, fixture

OLD_VAULT = fixture("vaults/schema-3/vault.db")
OLD_PASSPHRASE = "copper kettle winter orchard"
OLD_DATES = [
    "2011-03-31",
    "2011-04-05",
    "2011-04-07",
    "2013-12-15",
    "2014-03-01",
    "2014-03-02",
    "2014-03-03",
    "2014-03-03",
    "2014-03-04",
    "2014-03-04",
    "2015-11-03",
    "2017-05-08",
]
OLD_TABLES = ["audit_checkpoints", "audit_log", "audit_nodes", "authorization_codes"]
OLD_TABLES += ["category_keys", "clients", "grants", "meta", "records", "sources", "tokens"]
BACKUP_NAME = re.compile(r"pds-before-upgrade-schema-3-\d{4}-\d\d-\d\dT\d{6}Z\.db")


def run(runner: CliRunner, *args: str):
    return runner.invoke(cli, list(args))


def ok_json(runner: CliRunner, *args: str):
    result = run(runner, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def no_passphrase(home: Path) -> CliRunner:
    """A runner with no passphrase anywhere: a prompt would find no input and fail."""
    return CliRunner(env={"PDS_HOME": str(home), "PDS_PASSPHRASE": "", "PDS_PASSPHRASE_FILE": ""})


def with_passphrase(home: Path, passphrase: str = OLD_PASSPHRASE) -> CliRunner:
    return CliRunner(env={"PDS_HOME": str(home), "PDS_PASSPHRASE": passphrase})


@pytest.fixture
def old_home(tmp_path: Path) -> Path:
    home = tmp_path / "old"
    home.mkdir()
    shutil.copyfile(OLD_VAULT, home / "vault.db")
    return home


def read_only(path: Path) -> sqlite3.Connection:
    """A connection that writes nothing, not even a -wal or -shm file beside ``path``
    (the file must be whole: no WAL left over)."""
    assert not path.with_name(path.name + "-wal").exists()
    return sqlite3.connect(f"{path.as_uri()}?immutable=1", uri=True)


def user_version(path: Path) -> int:
    conn = read_only(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def contents(path: Path, tables: list[str]) -> dict[str, list[tuple]]:
    """Every row of ``tables`` (and the schema of the whole file), read without writing."""
    conn = read_only(path)
    try:
        found = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in tables}  # noqa: S608
        found["sqlite_master"] = conn.execute(
            "SELECT type, name, sql FROM sqlite_master ORDER BY name"
        ).fetchall()
        return found
    finally:
        conn.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_fixture_is_a_schema_3_vault() -> None:
    assert user_version(OLD_VAULT) == 3
    tables = [r[1] for r in contents(OLD_VAULT, [])["sqlite_master"] if r[0] == "table"]
    assert tables == OLD_TABLES
    assert len(contents(OLD_VAULT, ["records"])["records"]) == 12


def test_upgrade_backs_up_then_migrates(old_home: Path) -> None:
    original = contents(OLD_VAULT, OLD_TABLES)
    out = ok_json(no_passphrase(old_home), "upgrade")
    backups = sorted((old_home / "backups").iterdir())
    assert len(backups) == 1
    backup = backups[0]
    assert BACKUP_NAME.fullmatch(backup.name), backup.name
    assert out == {
        "home": str(old_home),
        "schema_before": 3,
        "schema": SCHEMA_VERSION,
        "upgraded": True,
        "backup": str(backup),
    }
    # The backup is the vault as it was: schema 3, the same tables, every row the same.
    assert user_version(backup) == 3
    assert contents(backup, OLD_TABLES) == original
    assert backup.stat().st_mode & 0o777 == 0o600
    assert (old_home / "backups").stat().st_mode & 0o777 == 0o700
    # The vault is at this pds's schema, and everything the old pds stored is there.
    assert user_version(old_home / "vault.db") == SCHEMA_VERSION
    runner = with_passphrase(old_home)
    status = ok_json(runner, "status")
    assert status["schema_version"] == SCHEMA_VERSION
    assert (status["records"], status["categories"], status["sources"]) == (
        12,
        {"transactions": 12},
        5,
    )
    records = ok_json(runner, "records")
    assert [r["occurred_at"] for r in records] == OLD_DATES
    assert [c["name"] for c in ok_json(runner, "clients", "list")] == ["Acme Bank"]
    verified = ok_json(runner, "audit", "verify")
    assert (verified["ok"], verified["problems"], verified["first_bad_index"]) == (True, [], None)
    upgrades = [
        e for e in ok_json(runner, "audit", "tail", "-n", "100") if e["action"] == "vault.upgrade"
    ]
    assert len(upgrades) == 1
    assert upgrades[0]["detail"] == {"from": 3, "to": SCHEMA_VERSION, "backup": backup.name}
    # The backup opens with the old passphrase: restored elsewhere, it holds the 12 records.
    elsewhere = old_home.parent / "elsewhere"
    restored = ok_json(with_passphrase(elsewhere), "restore", str(backup))
    assert restored == {
        "restored": str(backup),
        "records": 12,
        "schema_before": 3,
        "schema": SCHEMA_VERSION,
    }


def test_upgrade_text(old_home: Path) -> None:
    result = run(no_passphrase(old_home), "upgrade")
    assert result.exit_code == 0, result.output
    (backup,) = (old_home / "backups").iterdir()
    assert result.stdout == (
        f"Backed up the vault as it was (schema 3) to {backup}.\n"
        f"Upgraded the vault at {old_home} from schema 3 to {SCHEMA_VERSION}.\n"
        "Its records are indexed for search at the next unlock, once: about 4 seconds "
        "per 100,000 records, with nothing printed meanwhile.\n"
    )
    assert result.stderr == ""


def test_a_second_upgrade_does_nothing(old_home: Path) -> None:
    runner = no_passphrase(old_home)
    ok_json(runner, "upgrade")
    vault = digest(old_home / "vault.db")
    (backup,) = (old_home / "backups").iterdir()
    for _ in range(3):
        assert ok_json(runner, "upgrade") == {
            "home": str(old_home),
            "schema_before": SCHEMA_VERSION,
            "schema": SCHEMA_VERSION,
            "upgraded": False,
            "backup": None,
        }
        result = run(runner, "upgrade")
        assert result.exit_code == 0
        assert result.stdout == (
            f"The vault at {old_home} is at schema {SCHEMA_VERSION}, the newest this pds "
            "knows; nothing to do.\n"
        )
    assert list((old_home / "backups").iterdir()) == [backup]
    assert digest(old_home / "vault.db") == vault


def test_a_current_vault_is_left_alone(runner: CliRunner, initialised: Path) -> None:
    before = digest(initialised / "vault.db")
    assert ok_json(no_passphrase(initialised), "upgrade") == {
        "home": str(initialised),
        "schema_before": SCHEMA_VERSION,
        "schema": SCHEMA_VERSION,
        "upgraded": False,
        "backup": None,
    }
    assert not (initialised / "backups").exists()
    assert digest(initialised / "vault.db") == before


def test_a_newer_vault_is_refused(initialised: Path) -> None:
    conn = sqlite3.connect(initialised / "vault.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = digest(initialised / "vault.db")
    for _ in range(2):
        result = run(no_passphrase(initialised), "upgrade")
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr == (
            f"Error: this vault uses schema version {SCHEMA_VERSION + 1}, "
            f"but this pds only knows versions up to {SCHEMA_VERSION}\n"
            "Hint: Upgrade pds to the version that wrote this vault, or restore an older backup.\n"
        )
    assert not (initialised / "backups").exists()
    assert digest(initialised / "vault.db") == before


def test_no_vault(tmp_path: Path) -> None:
    result = run(no_passphrase(tmp_path / "none"), "upgrade")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: no vault at {tmp_path / 'none'}\n"
        "Hint: Create one with `pds init`, or point PDS_HOME at an existing vault.\n"
    )
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a database at all, just text" * 10, "is not a pds vault (not an SQLite database)"),
        (None, "is not a pds vault (no pds schema)"),
    ],
)
def test_not_a_vault(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "vault.db"
    if content is None:
        sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    result = run(no_passphrase(tmp_path), "upgrade")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {path} {message}\nHint: Point PDS_HOME at the folder that holds your vault.db.\n"
    )
    assert path.read_bytes() == before
    assert not (tmp_path / "backups").exists()


def test_no_backup_no_upgrade(old_home: Path) -> None:
    """A backup that cannot be written stops the upgrade before any migration."""
    (old_home / "backups").write_bytes(b"a file where the folder should be")
    result = run(no_passphrase(old_home), "upgrade")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: cannot make the backup folder {old_home / 'backups'}: File exists; "
        "the vault was not upgraded\n"
        "Hint: Make it a folder pds can write to, then run `pds upgrade` again.\n"
    )
    assert user_version(old_home / "vault.db") == 3
    assert contents(old_home / "vault.db", OLD_TABLES) == contents(OLD_VAULT, OLD_TABLES)


# -- rolling back -----------------------------------------------------------------------------


def test_restoring_the_backup_leaves_it_as_the_old_pds_made_it(old_home: Path) -> None:
    """This pds restores the pre-upgrade backup (migrating the restored vault), and the
    backup file itself is not touched: an older pds can still take it back."""
    ok_json(no_passphrase(old_home), "upgrade")
    (backup,) = (old_home / "backups").iterdir()
    before = digest(backup)
    runner = with_passphrase(old_home)
    ok_json(runner, "import", str(fixture("midata/nationwide-test-midata.csv")))
    assert ok_json(runner, "status")["records"] > 12
    assert ok_json(runner, "restore", "--yes", str(backup)) == {
        "restored": str(backup),
        "records": 12,
        "schema_before": 3,
        "schema": SCHEMA_VERSION,
    }
    assert user_version(old_home / "vault.db") == SCHEMA_VERSION
    assert digest(backup) == before
    assert user_version(backup) == 3
    for _ in range(2):  # in words, each time
        result = run(runner, "restore", "--yes", str(backup))
        assert result.exit_code == 0, result.output
        assert result.stdout == (
            f"Restored 12 records from {backup} into {old_home}.\n"
            f"The backup was at schema 3; this pds upgraded the restored vault to schema "
            f"{SCHEMA_VERSION} (to go back to an older pds, restore the backup with that "
            "version).\n"
        )
        assert user_version(old_home / "vault.db") == SCHEMA_VERSION
    assert digest(backup) == before


def test_restoring_the_fixture_itself_says_it_was_upgraded(tmp_path: Path) -> None:
    """The schema-3 vault restored straight from its file (as a Litestream copy would be)."""
    copy = tmp_path / "schema-3.db"
    shutil.copyfile(OLD_VAULT, copy)
    home = tmp_path / "restored"
    result = run(with_passphrase(home), "restore", str(copy))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"Restored 12 records from {copy} into {home}.",
        f"The backup was at schema 3; this pds upgraded the restored vault to schema "
        f"{SCHEMA_VERSION} (to go back to an older pds, restore the backup with that version).",
    ]
    assert user_version(copy) == 3
    status = restore(Settings(home=tmp_path / "again"), copy, OLD_PASSPHRASE)
    assert (status["schema_before"], status["schema_version"], status["records"]) == (
        3,
        SCHEMA_VERSION,
        12,
    )


def test_the_older_pds_restores_the_backup_as_schema_3(
    old_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rolling back: with pds at schema 3 again, `restore` of the pre-upgrade backup over
    the upgraded vault gives back the schema-3 vault. (The older pds is this code with
    SCHEMA_VERSION 3: its restore copies the backup with SQLite's backup API as now.)"""
    ok_json(no_passphrase(old_home), "upgrade")
    (backup,) = (old_home / "backups").iterdir()
    monkeypatch.setattr(dbmod, "SCHEMA_VERSION", 3)
    settings = Settings(home=old_home)
    status = restore(settings, backup, OLD_PASSPHRASE)
    assert (status["schema_before"], status["schema_version"], status["records"]) == (3, 3, 12)
    assert user_version(old_home / "vault.db") == 3
    tables = [r[1] for r in contents(old_home / "vault.db", [])["sqlite_master"] if r[0] == "table"]
    assert tables == OLD_TABLES
    # ... and it refuses the wrong passphrase without replacing anything.
    with pytest.raises(VaultLocked, match="the passphrase does not open the backup"):
        restore(settings, backup, PASSPHRASE)
    assert user_version(old_home / "vault.db") == 3


def test_a_backup_of_that_name_is_never_overwritten(
    old_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two upgrades in one second (the first stopped after its backup): the second refuses."""
    monkeypatch.setattr(upgrade_module, "now_iso", lambda: "2026-12-07T15:28:36Z")
    taken = old_home / "backups" / "pds-before-upgrade-schema-3-2026-12-07T152836Z.db"
    taken.parent.mkdir()
    taken.write_bytes(b"keep me")
    result = run(no_passphrase(old_home), "upgrade")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {taken} already exists; the vault was not upgraded\n"
        "Hint: Run `pds upgrade` again in a second; pds never overwrites a backup.\n"
    )
    assert taken.read_bytes() == b"keep me"
    assert user_version(old_home / "vault.db") == 3


@pytest.mark.slow
def test_serve_backs_an_old_vault_up_before_it_migrates(old_home: Path, tmp_path: Path) -> None:
    """`pds serve` run straight after installing a newer pds (no `pds upgrade` first): the
    vault is backed up as it was, upgraded, then served; a second start changes nothing."""
    import os
    import sys

    from tests.servers import answers, free_port, running

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PDS_HOME": str(old_home), "PDS_PASSPHRASE": OLD_PASSPHRASE}
    env.pop("PDS_ISSUER", None)
    argv = [sys.executable, "-m", "pds", "serve", "--port", str(port), "--workers", "1"]
    out = tmp_path / "serve.out"
    with running(argv, out, answers(base + "/healthz"), env=env, errors=tmp_path / "serve.err"):
        backups = sorted((old_home / "backups").iterdir())
    assert len(backups) == 1
    assert BACKUP_NAME.fullmatch(backups[0].name)
    assert out.read_text() == (
        f"Backed up the vault as it was (schema 3) to {backups[0]}.\n"
        f"Upgraded the vault at {old_home} from schema 3 to {SCHEMA_VERSION}.\n"
        "Its records are indexed for search at the next unlock, once: about 4 seconds "
        "per 100,000 records, with nothing printed meanwhile.\n"
        f"Serving on {base}  (Ctrl-C stops it)\n"
        f"Issuer: {base}\n"
    )
    assert user_version(backups[0]) == 3
    assert upgrade_module.stored_version(old_home / "vault.db") == SCHEMA_VERSION  # WAL open
    with running(argv, out, answers(base + "/healthz"), env=env, errors=tmp_path / "serve.err"):
        pass
    assert out.read_text() == f"Serving on {base}  (Ctrl-C stops it)\nIssuer: {base}\n"
    assert sorted((old_home / "backups").iterdir()) == backups


def test_the_first_unlock_after_the_upgrade_indexes_the_old_records(old_home: Path) -> None:
    """Schema 8 adds the search index; the upgrade has no key, so the records the old pds
    stored are indexed when the vault is first unlocked, and found from then on."""
    ok_json(no_passphrase(old_home), "upgrade")
    conn = read_only(old_home / "vault.db")
    assert conn.execute("SELECT count(*) FROM search_terms").fetchone() == (0,)
    assert conn.execute("SELECT value FROM meta WHERE key = 'search_indexed'").fetchone() is None
    conn.close()
    found = ok_json(with_passphrase(old_home), "search", "Withdrawal")
    assert [(g["category"], g["count"]) for g in found["categories"]] == [("transactions", 2)]
    assert [r["occurred_at"] for r in found["categories"][0]["records"]] == [
        "2014-03-03",
        "2011-04-05",
    ]
    assert ok_json(with_passphrase(old_home), "search", "etc chemist")["categories"] == []
