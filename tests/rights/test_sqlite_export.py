"""Export to a plain SQLite file for Datasette: the tables and their columns, the counts, a
record's values, the foreign keys, full-text search, the filters, mode 0600, never a
half-written or overwritten file, the audit entry, and the command's output and errors."""

from __future__ import annotations

import json
import sqlite3
import stat
from datetime import date
from pathlib import Path

import pytest

from pds import db
from pds.cli import cli
from pds.db.sqlite_export import ExploreFile
from pds.errors import ValidationError
from pds.importer import import_file
from pds.rights import sqlite_export
from pds.rights.export import ExportError
from pds.vault import Vault
from pds.vocabulary import CATEGORIES
from tests.conftest import fixture

FILES = (
    "midata/midata-spec-example.csv",
    "vcard/rfc6350-example.vcf",
    "icalendar/alarm_google_future.ics",
    "greenbutton/TestGBDataHourlyNineDaysBinnedDaily.xml",
)
TRANSACTION_COLUMNS = [
    "id",
    "occurred_at",
    "source_id",
    "date",
    "amount",
    "currency",
    "description",
    "counterparty",
    "balance",
    "type",
    "account",
    "reference",
]


def _fill(vault: Vault) -> None:
    for path in FILES:
        import_file(vault, fixture(path))


def _tables(conn: sqlite3.Connection) -> list[str]:
    sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '%_fts_%' "
    return [r[0] for r in conn.execute(sql + "ORDER BY name")]


def _columns(conn: sqlite3.Connection, table: str) -> list[tuple[str, str, int]]:
    return [(r[1], r[2], r[5]) for r in conn.execute(f"PRAGMA table_info({table})")]


def _count(conn: sqlite3.Connection, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608


def test_the_file_holds_every_category_with_real_columns(vault: Vault, tmp_path: Path) -> None:
    _fill(vault)
    target = tmp_path / "mine.db"
    done = sqlite_export.export_sqlite(vault, target)
    assert done.as_dict() == {
        "sqlite": str(target),
        "encrypted": False,
        "records": 224,
        "tables": {"sources": 4, "transactions": 6, "energy": 216, "contacts": 1, "events": 1},
        "categories": ["transactions", "energy", "contacts", "events"],
        "since": None,
        "until": None,
    }
    conn = sqlite3.connect(target)
    assert _tables(conn) == [
        "contacts",
        "contacts_fts",
        "energy",
        "energy_fts",
        "events",
        "events_fts",
        "sources",
        "transactions",
        "transactions_fts",
    ]
    # the counts are the vault's own (`pds records`, `pds status`)
    held = vault.status()["categories"]
    assert held == {"contacts": 1, "energy": 216, "events": 1, "transactions": 6}
    assert {c: _count(conn, c) for c in held} == held
    assert _columns(conn, "sources") == [
        ("id", "INTEGER", 1),
        ("connector", "TEXT", 0),
        ("filename", "TEXT", 0),
        ("imported_at", "TEXT", 0),
        ("new", "INTEGER", 0),
        ("duplicate", "INTEGER", 0),
    ]
    assert [c[0] for c in _columns(conn, "transactions")] == TRANSACTION_COLUMNS
    assert _columns(conn, "transactions")[:5] == [
        ("id", "INTEGER", 1),
        ("occurred_at", "TEXT", 0),
        ("source_id", "INTEGER", 0),
        ("date", "TEXT", 0),
        ("amount", "TEXT", 0),
    ]
    assert ("all_day", "INTEGER", 0) in _columns(conn, "events")
    sources = conn.execute("SELECT * FROM sources ORDER BY id").fetchall()
    assert sources == [
        (s["id"], s["connector"], s["filename"], s["imported_at"], s["new"], s["duplicate"])
        for s in vault.sources()
    ]
    assert [s[1:3] + s[4:] for s in sources] == [
        ("midata", "midata-spec-example.csv", 6, 0),
        ("vcard", "rfc6350-example.vcf", 1, 0),
        ("ical", "alarm_google_future.ics", 1, 0),
        ("greenbutton", "TestGBDataHourlyNineDaysBinnedDaily.xml", 216, 0),
    ]


def test_a_known_record_and_its_exact_values(vault: Vault, tmp_path: Path) -> None:
    _fill(vault)
    target = tmp_path / "mine.db"
    sqlite_export.export_sqlite(vault, target)
    conn = sqlite3.connect(target)
    conn.row_factory = sqlite3.Row
    fitness = conn.execute("SELECT * FROM transactions WHERE id = 2").fetchone()
    assert dict(fitness) == {
        "id": 2,
        "occurred_at": "2014-03-04",
        "source_id": 1,
        "date": "2014-03-04",
        "amount": "-50.00",  # a decimal string, never a float
        "currency": "GBP",
        "description": "Fitness First",
        "counterparty": None,
        "balance": "255.00",
        "type": "DD",
        "account": None,
        "reference": None,
    }
    assert conn.execute("SELECT typeof(amount) FROM transactions WHERE id = 2").fetchone()[0] == (
        "text"
    )
    assert [tuple(r) for r in conn.execute("SELECT id, amount FROM transactions ORDER BY id")] == [
        (1, "5.00"),
        (2, "-50.00"),
        (3, "-100.00"),
        (4, "-20.00"),
        (5, "-75.00"),
        (6, "-50.00"),
    ]
    contact = conn.execute("SELECT full_name, name, emails, org FROM contacts").fetchone()
    assert tuple(contact) == (
        "Simon Perreault",
        '{"additional": "", "family": "Perreault", "given": "Simon", "prefix": "", '
        '"suffix": "ing. jr,M.Sc."}',
        '[{"types": ["work"], "value": "simon.perreault@viagenie.ca"}]',
        '["Viagenie"]',
    )
    event = conn.execute("SELECT summary, start, all_day, source_id FROM events").fetchone()
    assert tuple(event) == ("event with alarms", "2024-10-04T18:15:00Z", 0, 3)
    # every record's row is the vault's record, column by column
    for rec in vault.records("transactions"):
        got = dict(conn.execute("SELECT * FROM transactions WHERE id = ?", (rec.id,)).fetchone())
        assert got == sqlite_export.row(rec)
        assert got["description"] == rec.payload["description"]


def test_foreign_keys_to_sources_hold(vault: Vault, tmp_path: Path) -> None:
    _fill(vault)
    target = tmp_path / "mine.db"
    sqlite_export.export_sqlite(vault, target)
    conn = sqlite3.connect(target)
    for table in ("transactions", "energy", "contacts", "events"):
        assert [r[2:5] for r in conn.execute(f"PRAGMA foreign_key_list({table})")] == [
            ("sources", "source_id", "id")
        ]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    joined = conn.execute(
        "SELECT s.connector, count(*) FROM energy e JOIN sources s ON s.id = e.source_id GROUP BY 1"
    ).fetchall()
    assert joined == [("greenbutton", 216)]


def test_full_text_search_finds_a_transaction_by_a_word(vault: Vault, tmp_path: Path) -> None:
    _fill(vault)
    target = tmp_path / "mine.db"
    sqlite_export.export_sqlite(vault, target)
    conn = sqlite3.connect(target)
    found = conn.execute(
        "SELECT t.id, t.description, t.amount FROM transactions t JOIN transactions_fts f "
        "ON f.rowid = t.id WHERE transactions_fts MATCH 'fitness'"
    ).fetchall()
    assert found == [(2, "Fitness First", "-50.00")]
    assert conn.execute(
        "SELECT rowid FROM transactions_fts WHERE transactions_fts MATCH 'chemist'"
    ).fetchall() == [(1,)]
    assert conn.execute(
        "SELECT rowid FROM events_fts WHERE events_fts MATCH 'alarms'"
    ).fetchall() == [(8,)]
    assert conn.execute(
        "SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH 'viagenie'"
    ).fetchall() == [(7,)]
    assert (
        conn.execute(
            "SELECT rowid FROM transactions_fts WHERE transactions_fts MATCH 'nowhere'"
        ).fetchall()
        == []
    )


def test_category_since_and_until_choose_the_records(vault: Vault, tmp_path: Path) -> None:
    _fill(vault)
    energy = list(vault.records("energy"))
    assert [(r.id, r.occurred_at) for r in (energy[1], energy[99])] == [
        (10, "2014-01-01T06:00:00Z"),
        (108, "2014-01-05T08:00:00Z"),
    ]
    target = tmp_path / "energy.db"
    done = sqlite_export.export_sqlite(
        vault,
        target,
        categories=["energy", "transactions", "energy"],
        since=date(2014, 1, 2),
        until=date(2014, 1, 5),
    )
    # records of 2 to 5 January inclusive; none of the transactions (March 2014)
    assert done.tables == {"sources": 1, "transactions": 0, "energy": 96}
    assert done.categories == ("transactions", "energy")
    conn = sqlite3.connect(target)
    assert _tables(conn) == ["energy", "energy_fts", "sources", "transactions", "transactions_fts"]
    rows = conn.execute("SELECT id, occurred_at FROM energy ORDER BY occurred_at, id").fetchall()
    assert len(rows) == 96
    assert rows[0] == (28, "2014-01-02T00:00:00Z")  # the 1st of the 2nd January
    assert rows[1] == (29, "2014-01-02T01:00:00Z")
    assert rows[-1] == (123, "2014-01-05T23:00:00Z")  # the last hour of --until
    assert (108, "2014-01-05T08:00:00Z") in rows  # the 100th record overall
    assert (10, "2014-01-01T06:00:00Z") not in rows  # the 2nd, before --since
    assert conn.execute("SELECT id FROM sources").fetchall() == [(4,)]  # only those used

    only = sqlite_export.export_sqlite(vault, tmp_path / "t.db", categories=["transactions"])
    assert only.tables == {"sources": 1, "transactions": 6}
    conn = sqlite3.connect(tmp_path / "t.db")
    assert conn.execute("SELECT id, description FROM transactions ORDER BY id").fetchall()[1] == (
        2,
        "Fitness First",
    )
    assert _tables(conn) == ["sources", "transactions", "transactions_fts"]


def test_a_record_written_by_a_business_has_its_source(vault: Vault, tmp_path: Path) -> None:
    payload = {"text": "a new energy tariff", "kind": "switch", "expires_at": "2027-03-31"}
    with db.transaction(vault.conn):
        rid, created = vault.add_record("intentions", "2026-01-05", payload, source="client:acme")
    assert created
    sqlite_export.export_sqlite(vault, tmp_path / "i.db")
    conn = sqlite3.connect(tmp_path / "i.db")
    assert conn.execute(
        "SELECT i.id, i.text, i.kind, i.from_date, s.connector, s.filename FROM intentions i "
        "JOIN sources s ON s.id = i.source_id"
    ).fetchall() == [(rid, "a new energy tariff", "switch", None, "api", "client:acme")]


def test_a_field_named_like_a_record_column_is_prefixed() -> None:
    cols = sqlite_export.columns("health")
    assert list(cols)[:6] == ["id", "occurred_at", "source_id", "kind", "type", "start"]
    assert "payload_id" in cols
    assert list(cols).count("id") == 1


def test_file_is_0600_and_no_part_file_is_left(vault: Vault, tmp_path: Path) -> None:
    _fill(vault)
    out = tmp_path / "out"
    out.mkdir()
    sqlite_export.export_sqlite(vault, out / "mine.db")
    assert stat.S_IMODE((out / "mine.db").stat().st_mode) == 0o600
    assert sorted(p.name for p in out.iterdir()) == ["mine.db"]


def test_existing_file_is_refused_unless_force(vault: Vault, tmp_path: Path) -> None:
    _fill(vault)
    target = tmp_path / "taken.db"
    target.write_bytes(b"mine")
    before = vault.log.size()
    with pytest.raises(ExportError) as err:
        sqlite_export.export_sqlite(vault, target)
    assert (err.value.message, err.value.hint) == (
        f"{target} already exists",
        "Choose a new file name, or pass --force to replace it.",
    )
    assert target.read_bytes() == b"mine"
    assert vault.log.size() == before
    done = sqlite_export.export_sqlite(vault, target, categories=["events"], force=True)
    assert done.tables == {"sources": 1, "events": 1}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sqlite3.connect(target).execute("SELECT summary FROM events").fetchall() == [
        ("event with alarms",)
    ]
    with pytest.raises(ExportError, match=r"is a folder$"):
        sqlite_export.export_sqlite(vault, tmp_path, force=True)


def test_failure_midway_leaves_no_file_and_no_entry(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(vault)
    out = tmp_path / "out"
    out.mkdir()
    batches: list[int] = []
    real = ExploreFile.insert_batch

    def failing(self: ExploreFile, name: str, rows: list) -> None:
        batches.append(len(rows))
        if name == "energy":
            raise OSError("disk went away")
        real(self, name, rows)

    monkeypatch.setattr(ExploreFile, "insert_batch", failing)
    before = vault.log.size()
    with pytest.raises(OSError, match="disk went away"):
        sqlite_export.export_sqlite(vault, out / "mine.db")
    assert batches == [6, 216]  # transactions written, then energy's batch failed
    assert list(out.iterdir()) == []
    assert vault.log.size() == before
    assert not vault.conn.in_transaction


def test_records_are_written_in_batches(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(vault)
    monkeypatch.setattr(sqlite_export, "BATCH", 100)
    sizes: list[tuple[str, int]] = []
    real = ExploreFile.insert_batch

    def counting(self: ExploreFile, name: str, rows: list) -> None:
        sizes.append((name, len(rows)))
        real(self, name, rows)

    monkeypatch.setattr(ExploreFile, "insert_batch", counting)
    done = sqlite_export.export_sqlite(vault, tmp_path / "b.db")
    assert sizes == [
        ("transactions", 6),
        ("energy", 100),
        ("energy", 100),
        ("energy", 16),
        ("contacts", 1),
        ("events", 1),
    ]
    assert done.tables["energy"] == 216


def test_export_is_one_audit_entry_with_counts_only(vault: Vault, tmp_path: Path) -> None:
    _fill(vault)
    before = vault.log.size()
    sqlite_export.export_sqlite(
        vault, tmp_path / "a.db", categories=["energy"], since=date(2014, 1, 2)
    )
    assert vault.log.size() == before + 1
    entry = json.loads(vault.log.tail(1)[0][1])
    assert {k: entry[k] for k in ("actor", "action", "decision", "count", "detail")} == {
        "actor": "owner",
        "action": "export.sqlite",
        "decision": "allowed",
        "count": 197,
        "detail": {
            "categories": {"energy": 197},
            "since": "2014-01-02",
            "until": None,
            "format": "sqlite",
        },
    }


def test_unknown_category_names_the_valid_ones(vault: Vault, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as err:
        sqlite_export.export_sqlite(vault, tmp_path / "x.db", categories=["money"])
    assert err.value.message == f'"money" is not a category; use one of {", ".join(CATEGORIES)}'
    assert list(tmp_path.iterdir()) == [tmp_path / "vault"]


# -- the command ----------------------------------------------------------------------------

WARNING = "Warning: {} is not encrypted: anyone who can read it can read your records.\n"


def test_cli_export_sqlite(runner, initialised: Path, tmp_path: Path) -> None:
    imported = runner.invoke(cli, ["import", str(fixture(FILES[0])), str(fixture(FILES[2]))])
    assert imported.exit_code == 0, imported.output
    target = tmp_path / "mine.db"
    result = runner.invoke(cli, ["export", "--sqlite", str(target)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"Exported 7 records to {target}.",
        "  sources: 2 rows",
        "  transactions: 6 rows",
        "  events: 1 row",
        f"Explore it with: datasette {target}",
    ]
    assert result.stderr == WARNING.format(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    listed = runner.invoke(cli, ["records", "--category", "transactions", "--json"])
    ids = [r["id"] for r in json.loads(listed.stdout)]
    got = sqlite3.connect(target).execute("SELECT id FROM transactions ORDER BY id").fetchall()
    assert [r[0] for r in got] == sorted(ids)

    again = runner.invoke(cli, ["export", "--sqlite", str(target), "--json"])
    assert again.exit_code == 1
    assert again.stdout == ""
    assert again.stderr.splitlines() == [
        f"Error: {target} already exists",
        "Hint: Choose a new file name, or pass --force to replace it.",
    ]

    forced = runner.invoke(
        cli,
        ["export", "--sqlite", str(target), "--force", "--json", "--category", "events"]
        + ["--since", "2024-10-04", "--until", "2024-10-04"],
    )
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.stdout) == {
        "sqlite": str(target),
        "encrypted": False,
        "records": 1,
        "tables": {"sources": 1, "events": 1},
        "categories": ["events"],
        "since": "2024-10-04",
        "until": "2024-10-04",
    }
    assert forced.stderr == WARNING.format(target)


def test_cli_export_sqlite_bad_options(runner, initialised: Path, tmp_path: Path) -> None:
    target = tmp_path / "x.db"
    unknown = runner.invoke(cli, ["export", "--sqlite", str(target), "--category", "money"])
    assert unknown.exit_code == 1
    assert unknown.stderr.splitlines() == [
        f'Error: "money" is not a category; use one of {", ".join(CATEGORIES)}'
    ]
    both = runner.invoke(cli, ["export", "--sqlite", str(target), "--out", str(tmp_path)])
    assert both.exit_code == 2
    assert both.stderr.splitlines()[-1] == (
        "Error: --out and --sqlite write different files; give one of them"
    )
    alone = runner.invoke(cli, ["export", "--category", "events"])
    assert alone.exit_code == 2
    assert alone.stderr.splitlines()[-1] == "Error: --category goes with --sqlite FILE"
    backwards = runner.invoke(
        cli, ["export", "--sqlite", str(target), "--since", "2024-02-01", "--until", "2024-01-01"]
    )
    assert backwards.exit_code == 2
    assert backwards.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--until': --until is before --since"
    )
    bad_day = runner.invoke(cli, ["export", "--sqlite", str(target), "--since", "May"])
    assert bad_day.exit_code == 2
    assert bad_day.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--since': \"May\" is not a date like 2024-03-31"
    )
    assert not target.exists()


def test_a_file_that_lost_its_mode_is_not_kept(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(vault)
    out = tmp_path / "out"
    out.mkdir()
    real = ExploreFile.__init__

    def widened(self: ExploreFile, path: Path) -> None:
        path.chmod(0o644)
        real(self, path)

    monkeypatch.setattr(ExploreFile, "__init__", widened)
    with pytest.raises(ExportError) as err:
        sqlite_export.export_sqlite(vault, out / "mine.db")
    assert err.value.message == "the export was written with mode 644, not 600; it was deleted"
    assert list(out.iterdir()) == []


def test_cli_usage_mistakes_are_told_before_the_vault_is_opened(runner, tmp_path: Path) -> None:
    # no vault here: the usage error comes first, with no passphrase asked for
    both = runner.invoke(cli, ["export", "--sqlite", "x.db", "--out", "y.zip"], input="")
    assert both.exit_code == 2
    assert both.stderr.splitlines() == [
        "Usage: cli export [OPTIONS]",
        "Try 'cli export --help' for help.",
        "",
        "Error: --out and --sqlite write different files; give one of them",
    ]
    forced = runner.invoke(cli, ["export", "--force"], input="")
    assert forced.exit_code == 2
    assert forced.stderr.splitlines()[-1] == "Error: --force goes with --sqlite FILE"
