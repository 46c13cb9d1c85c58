"""The `pds` command, every command and its error paths, through CliRunner."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from pds.cli import cli
from pds.db import SCHEMA_VERSION
from tests.conftest import PASSPHRASE, fixture
from tests.factories import midata_file

SPEC = "midata/midata-spec-example.csv"


def run(runner: CliRunner, *args: str, input: str | None = None):
    return runner.invoke(cli, list(args), input=input)


def ok_json(runner: CliRunner, *args: str):
    result = run(runner, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_help_shows_the_requests_line_whole(runner: CliRunner) -> None:
    result = run(runner, "--help")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "  requests    Ask businesses for your data (GDPR Art. 15) or its erasure." in lines


# -- init -----------------------------------------------------------------------------------


def test_init_creates_vault(runner: CliRunner, home: Path) -> None:
    result = run(runner, "init")
    assert result.exit_code == 0
    assert result.stdout == (
        f"Created an encrypted vault at {home}.\n"
        "Keep the passphrase safe: without it the data cannot be read by anyone.\n"
    )
    assert (home / "vault.db").exists()


def test_init_json(runner: CliRunner, home: Path) -> None:
    assert ok_json(runner, "init") == {"home": str(home), "created": True}


def test_init_twice_refused(runner: CliRunner, initialised: Path) -> None:
    result = run(runner, "init")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: a vault already exists at {initialised}\n"
        "Hint: Use it, or choose another PDS_HOME.\n"
    )


def test_init_prompts_for_passphrase_twice(home: Path) -> None:
    runner = CliRunner(env={"PDS_HOME": str(home), "PDS_PASSPHRASE": "", "PDS_PASSPHRASE_FILE": ""})
    result = run(runner, "init", input="quiet plum harbour\nquiet plum harbour\n")
    assert result.exit_code == 0, result.output
    other = CliRunner(env={"PDS_HOME": str(home), "PDS_PASSPHRASE": "quiet plum harbour"})
    assert ok_json(other, "status")["records"] == 0


def test_passphrase_file_is_read(home: Path, tmp_path: Path) -> None:
    pf = tmp_path / "pass.txt"
    pf.write_text(PASSPHRASE + "\n")
    runner = CliRunner(env={"PDS_HOME": str(home), "PDS_PASSPHRASE_FILE": str(pf)})
    assert ok_json(runner, "init")["created"] is True
    plain = CliRunner(env={"PDS_HOME": str(home), "PDS_PASSPHRASE": PASSPHRASE})
    assert ok_json(plain, "status")["records"] == 0


def test_missing_passphrase_file(home: Path, tmp_path: Path) -> None:
    runner = CliRunner(env={"PDS_HOME": str(home), "PDS_PASSPHRASE_FILE": str(tmp_path / "no")})
    result = run(runner, "init")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: cannot read PDS_PASSPHRASE_FILE {tmp_path / 'no'}: No such file or directory\n"
        "Hint: Point PDS_PASSPHRASE_FILE at a readable file holding the passphrase.\n"
    )


def test_no_passphrase_at_all(home: Path) -> None:
    runner = CliRunner(env={"PDS_HOME": str(home), "PDS_PASSPHRASE": "", "PDS_PASSPHRASE_FILE": ""})
    result = run(runner, "init", input="")
    assert result.exit_code == 1
    assert result.stderr.endswith(
        "Error: no passphrase given\n"
        "Hint: Type it at the prompt, or set PDS_PASSPHRASE_FILE (or PDS_PASSPHRASE).\n"
    )


# -- status and the locked vault --------------------------------------------------------------


def test_status_without_vault(runner: CliRunner, home: Path) -> None:
    result = run(runner, "status")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: no vault at {home}\n"
        "Hint: Create one with `pds init`, or point PDS_HOME at an existing vault.\n"
    )


def test_wrong_passphrase(initialised: Path) -> None:
    runner = CliRunner(env={"PDS_HOME": str(initialised), "PDS_PASSPHRASE": "wrong"})
    result = run(runner, "status")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: the passphrase is wrong, or the vault's key is damaged\n"
        "Hint: Check the passphrase (PDS_PASSPHRASE, PDS_PASSPHRASE_FILE or the prompt).\n"
    )


def test_newer_schema_refused(runner: CliRunner, initialised: Path) -> None:
    conn = sqlite3.connect(initialised / "vault.db")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    result = run(runner, "status")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: this vault uses schema version 99, "
        f"but this pds only knows versions up to {SCHEMA_VERSION}\n"
        "Hint: Upgrade pds to the version that wrote this vault, or restore an older backup.\n"
    )


def test_status_text_and_json(runner: CliRunner, initialised: Path) -> None:
    assert run(runner, "import", str(fixture(SPEC))).exit_code == 0
    st = ok_json(runner, "status")
    assert st["records"] == 6
    assert st["categories"] == {"transactions": 6}
    assert st["sources"] == 1
    assert st["schema_version"] == SCHEMA_VERSION
    assert st["kdf"] == {"algorithm": "argon2id", "memory_kib": 65536, "iterations": 3, "lanes": 4}
    text = run(runner, "status").stdout.splitlines()
    assert text[0] == f"Vault:      {initialised} (schema {SCHEMA_VERSION})"
    assert text[1:3] == ["Records:    6 from 1 imported file", "  transactions  6"]
    assert text[3] == (
        "Encryption: AES-256-GCM; passphrase key by Argon2id (64 MiB, 3 iterations, 4 lanes)"
    )


def test_status_columns_line_up(runner: CliRunner, initialised: Path) -> None:
    from pds.vault import SourceInfo
    from tests.factories import prepared, transaction

    assert run(runner, "import", str(fixture("vcard/John_Doe_IPHONE.vcf"))).exit_code == 0
    assert run(runner, "status").stdout.splitlines()[1:3] == [
        "Records:    1 from 1 imported file",
        "  contacts  1",
    ]
    assert run(runner, "import", str(fixture(SPEC))).exit_code == 0
    with open_for_test(initialised) as v:  # 1,234 more: a count wider than the others
        rows = [
            [prepared(transaction(f"2023-01-{1 + i % 28:02d}", f"-{i}.00", "x"), i)]
            for i in range(1234)
        ]
        v.ingest(SourceInfo("test", "many.csv", b"many"), rows)
    text = run(runner, "status").stdout.splitlines()
    assert text[1:4] == [
        "Records:    1241 from 3 imported files",
        "  contacts         1",
        "  transactions  1240",
    ]
    assert len({len(line) for line in text[2:4]}) == 1


def open_for_test(home: Path):
    from pds.settings import Settings
    from pds.vault import Vault

    return Vault.open(Settings(home=home), PASSPHRASE)


# -- import ---------------------------------------------------------------------------------


def test_import_reports_and_dedups(runner: CliRunner, initialised: Path) -> None:
    first = ok_json(runner, "import", str(fixture(SPEC)))
    assert (first["new"], first["duplicate"], first["rejected"], first["errors"]) == (6, 0, 0, [])
    assert first["files"][0]["connector"] == "midata"
    again = ok_json(runner, "import", str(fixture(SPEC)))
    assert (again["new"], again["duplicate"], again["rejected"]) == (0, 6, 0)
    text = run(runner, "import", str(fixture(SPEC)))
    assert text.stdout == "midata-spec-example.csv: 0 new, 6 already present, 0 rejected (midata)\n"


def test_import_several_files_one_bad(runner: CliRunner, initialised: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "Date,Type,Merchant/Description,Debit/Credit,Balance\n31/02/2024,VIS,X,-1.00,2.00\n"
    )
    result = run(runner, "import", str(bad), str(fixture(SPEC)), "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert (doc["new"], len(doc["files"]), len(doc["errors"])) == (6, 1, 1)
    assert result.stderr.startswith("Error: bad.csv line 2: ")
    assert ok_json(runner, "status")["records"] == 6


def test_import_malformed_changes_nothing(runner: CliRunner, initialised: Path, tmp_path: Path):
    rows = [("01/03/2024", "VIS", f"SHOP {i}", "-1.00", "10.00") for i in range(300)]
    rows[250] = ("01/03/2024", "VIS", "SHOP 250", '"12,3O"', "10.00")
    path = midata_file(tmp_path / "stmt.csv", rows)
    before = (initialised / "vault.db").read_bytes()
    result = run(runner, "import", str(path))
    assert result.exit_code == 1
    assert (
        result.stderr.splitlines()[0] == 'Error: stmt.csv line 252: amount "12,3O" is not a number'
    )
    assert (initialised / "vault.db").read_bytes() == before
    assert ok_json(runner, "status")["records"] == 0
    assert ok_json(runner, "records") == []


def test_import_unknown_format(runner: CliRunner, initialised: Path, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    result = run(runner, "import", str(path))
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: notes.txt: pds does not recognise this file's format\n"
        "Hint: `pds connectors` lists the formats pds reads; pass --connector NAME to choose.\n"
    )


def test_import_missing_file(runner: CliRunner, initialised: Path, tmp_path: Path) -> None:
    result = run(runner, "import", str(tmp_path / "nope.csv"))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {tmp_path / 'nope.csv'}: no such file\nHint: Check the path and try again.\n"
    )


def test_import_empty_file(runner: CliRunner, initialised: Path, tmp_path: Path) -> None:
    path = tmp_path / "empty.ofx"
    path.write_bytes(b"")
    result = run(runner, "import", str(path))
    assert result.stderr == "Error: empty.ofx: the file is empty\nHint: Download it again.\n"


def test_import_unknown_connector(runner: CliRunner, initialised: Path) -> None:
    result = run(runner, "import", "--connector", "nope", str(fixture(SPEC)))
    assert result.exit_code == 1
    assert result.stderr.startswith('Error: no connector called "nope"\nHint: Known connectors: ')


def test_import_forced_connector(runner: CliRunner, initialised: Path) -> None:
    assert ok_json(runner, "import", "--connector", "midata", str(fixture(SPEC)))["new"] == 6


# -- connectors and records -----------------------------------------------------------------


def test_connectors_lists_formats(runner: CliRunner) -> None:
    items = ok_json(runner, "connectors")
    names = {c["name"]: c for c in items}
    assert {"midata", "ofx"} <= set(names)
    assert names["midata"]["categories"] == ["transactions"]
    assert ".ofx" in names["ofx"]["extensions"]


def test_records_json_and_filters(runner: CliRunner, initialised: Path) -> None:
    ok_json(runner, "import", str(fixture(SPEC)))
    allrec = ok_json(runner, "records")
    assert [r["occurred_at"] for r in allrec] == sorted(r["occurred_at"] for r in allrec)
    assert len(allrec) == 6
    first = allrec[0]
    assert set(first) == {"id", "category", "source_id", "occurred_at", "payload"}
    dates = {r["occurred_at"] for r in allrec}
    lo, hi = min(dates), max(dates)
    only_lo = ok_json(runner, "records", "--since", lo, "--until", lo)
    assert {r["occurred_at"] for r in only_lo} == {lo}
    assert (
        ok_json(runner, "records", "--since", hi, "--category", "transactions")[-1]["occurred_at"]
        == hi
    )
    assert len(ok_json(runner, "records", "--limit", "2")) == 2
    assert ok_json(runner, "records", "--category", "health") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--since", "2024-13-01"],
            "Invalid value for '--since': \"2024-13-01\" is not a date like 2024-03-31",
        ),
        (
            ["--category", "shoes"],
            "Invalid value for '--category': \"shoes\" is not a category; use one of transactions, balances, energy, contacts, events, health, locations, activity, profile, intentions",
        ),
        (
            ["--until", "2024-01-01", "--since", "2024-02-01"],
            "Invalid value for '--until': --until is before --since",
        ),
    ],
)
def test_records_bad_options(runner: CliRunner, args, message) -> None:
    # Checked before the vault is even opened: no vault exists here.
    result = run(runner, "records", *args)
    assert result.exit_code == 2
    assert result.stderr.endswith(f"\nError: {message}\n")


def test_records_text(runner: CliRunner, initialised: Path, tmp_path: Path) -> None:
    path = midata_file(tmp_path / "s.csv", [("02/03/2024", "VIS", "COSTA", "-3.20", "96.80")])
    ok_json(runner, "import", str(path))
    assert run(runner, "records").stdout == (
        "       1  2024-03-02  transactions         -3.20 GBP  COSTA\n"
    )


def test_records_text_says_undated(runner: CliRunner, initialised: Path) -> None:
    ok_json(runner, "import", str(fixture("fhir/hl7-bundle-example-searchset.json")))
    lines = run(runner, "records").stdout.splitlines()
    assert [line[:37] for line in lines] == [
        "       1  undated     health        {",
        "       2  undated     health        {",
    ]
    assert "0001-01-01" not in run(runner, "records").stdout
    dated = ok_json(runner, "records", "--json")
    assert [r["occurred_at"] for r in dated] == ["0001-01-01", "0001-01-01"]


# -- passphrase -----------------------------------------------------------------------------


def test_passphrase_change(runner: CliRunner, initialised: Path, tmp_path: Path) -> None:
    newfile = tmp_path / "new.txt"
    newfile.write_text("brand new words\n")
    result = run(runner, "passphrase", "--new-passphrase-file", str(newfile))
    assert result.exit_code == 0
    assert result.stdout == "Passphrase changed. The old one no longer opens this vault.\n"
    assert run(runner, "status").exit_code == 1
    fresh = CliRunner(env={"PDS_HOME": str(initialised), "PDS_PASSPHRASE": "brand new words"})
    assert ok_json(fresh, "status")["records"] == 0


def test_passphrase_change_by_prompt(runner: CliRunner, initialised: Path) -> None:
    result = run(runner, "passphrase", input="typed words\ntyped words\n")
    assert result.exit_code == 0, result.output
    fresh = CliRunner(env={"PDS_HOME": str(initialised), "PDS_PASSPHRASE": "typed words"})
    assert ok_json(fresh, "status")["records"] == 0


def test_passphrase_empty_refused(runner: CliRunner, initialised: Path, tmp_path: Path) -> None:
    newfile = tmp_path / "new.txt"
    newfile.write_text("\n")
    result = run(runner, "passphrase", "--new-passphrase-file", str(newfile))
    assert result.exit_code == 1
    assert result.stderr == "Error: the new passphrase is empty\nHint: Choose a non-empty one.\n"
    assert ok_json(runner, "status")["records"] == 0


# -- backup and restore ---------------------------------------------------------------------


def test_backup_and_restore_round_trip(runner: CliRunner, initialised: Path, tmp_path: Path):
    ok_json(runner, "import", str(fixture(SPEC)))
    out = ok_json(runner, "backup", str(tmp_path / "b.db"))
    assert out["backup"] == str(tmp_path / "b.db")
    other = tmp_path / "other"
    runner2 = CliRunner(env={"PDS_HOME": str(other), "PDS_PASSPHRASE": PASSPHRASE})
    restored = ok_json(runner2, "restore", str(tmp_path / "b.db"))
    assert restored == {
        "restored": str(tmp_path / "b.db"),
        "records": 6,
        "schema_before": SCHEMA_VERSION,
        "schema": SCHEMA_VERSION,
    }
    assert ok_json(runner2, "records") == ok_json(runner, "records")
    again = runner2.invoke(cli, ["restore", "--yes", str(tmp_path / "b.db")])
    assert again.exit_code == 0, again.output
    assert again.stdout == f"Restored 6 records from {tmp_path / 'b.db'} into {other}.\n"


def test_backup_refuses_to_overwrite(runner: CliRunner, initialised: Path, tmp_path: Path) -> None:
    (tmp_path / "b.db").write_bytes(b"keep me")
    result = run(runner, "backup", str(tmp_path / "b.db"))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {tmp_path / 'b.db'} already exists\nHint: Choose a new file name; pds never overwrites.\n"
    )
    assert (tmp_path / "b.db").read_bytes() == b"keep me"


def test_backup_into_folder(runner: CliRunner, initialised: Path, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    out = ok_json(runner, "backup", str(folder))
    assert Path(out["backup"]).parent == folder
    assert Path(out["backup"]).name.startswith("pds-backup-")


def test_backup_to_a_missing_folder_refuses(
    runner: CliRunner, initialised: Path, tmp_path: Path
) -> None:
    before = ok_json(runner, "audit", "tail", "-n", "1000")
    for missing in (tmp_path / "nope", tmp_path / "a" / "b"):
        for _ in range(2):
            result = run(runner, "backup", f"{missing}/")
            assert result.exit_code == 1
            assert result.stderr == (
                f"Error: the folder {missing} does not exist\n"
                f"Hint: Create it first (mkdir -p {missing}), or give a file name for the "
                "backup.\n"
            )
            assert not missing.exists()
    inside = tmp_path / "gone" / "b.db"
    result = run(runner, "backup", str(inside))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: the folder {inside.parent} does not exist\n"
        f"Hint: Create it first (mkdir -p {inside.parent}), or choose another place.\n"
    )
    (tmp_path / "plain").write_bytes(b"keep me")
    result = run(runner, "backup", f"{tmp_path / 'plain'}/")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {tmp_path / 'plain'} is not a folder\nHint: Give a folder or a file name.\n"
    )
    assert (tmp_path / "plain").read_bytes() == b"keep me"
    # nothing was written, not even a log entry (the tail command's own entries aside)
    after = ok_json(runner, "audit", "tail", "-n", "1000")
    assert [e["action"] for e in after if e["action"] == "backup"] == []
    assert len(after) == len(before)
    # the same folder, once made, takes dated files: with and without the slash
    (tmp_path / "nope").mkdir()
    first = ok_json(runner, "backup", f"{tmp_path / 'nope'}/")["backup"]
    assert Path(first).parent == tmp_path / "nope"
    assert Path(first).name.startswith("pds-backup-")
    file_named = ok_json(runner, "backup", str(tmp_path / "nope" / "mine.db"))["backup"]
    assert file_named == str(tmp_path / "nope" / "mine.db")


def test_restore_over_existing_needs_yes(runner: CliRunner, initialised: Path, tmp_path: Path):
    ok_json(runner, "backup", str(tmp_path / "b.db"))
    ok_json(runner, "import", str(fixture(SPEC)))
    result = run(runner, "restore", str(tmp_path / "b.db"))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: a vault exists at {initialised}; restoring replaces it\nHint: Pass --yes to replace it.\n"
    )
    assert ok_json(runner, "status")["records"] == 6
    assert ok_json(runner, "restore", "--yes", str(tmp_path / "b.db"))["records"] == 0


def test_restore_wrong_passphrase(runner: CliRunner, initialised: Path, tmp_path: Path) -> None:
    ok_json(runner, "backup", str(tmp_path / "b.db"))
    other = CliRunner(env={"PDS_HOME": str(tmp_path / "o"), "PDS_PASSPHRASE": "wrong"})
    result = run(other, "restore", str(tmp_path / "b.db"))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: the passphrase does not open the backup {tmp_path / 'b.db'}\n"
        "Hint: Use the passphrase the vault had when the backup was made.\n"
    )
    assert not (tmp_path / "o" / "vault.db").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a database at all, just text" * 10, "is not a pds backup (not an SQLite database)"),
        (None, "is not a pds backup (no pds schema)"),
    ],
)
def test_restore_not_a_backup(runner: CliRunner, tmp_path: Path, content, message) -> None:
    path = tmp_path / "x.db"
    if content is None:
        sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    else:
        path.write_bytes(content)
    result = run(runner, "restore", str(path))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {path} {message}\n"


def test_restore_missing_file(runner: CliRunner, tmp_path: Path) -> None:
    result = run(runner, "restore", str(tmp_path / "none.db"))
    assert result.stderr == (
        f"Error: no backup file at {tmp_path / 'none.db'}\nHint: Give the path of a pds backup.\n"
    )


# -- demo -----------------------------------------------------------------------------------


def test_demo_creates_then_reuses(runner: CliRunner, home: Path) -> None:
    first = ok_json(runner, "demo")
    assert first == {"home": str(home), "created": True, "records": 1106}
    second = run(runner, "demo")
    assert second.stdout == (
        f"Using the demo vault at {home}: 1106 records.\n"
        "  demo-current-account-midata.csv: 0 new, 600 already present\n"
        "  demo-contacts.vcf: 0 new, 3 already present\n"
        "  demo-calendar.ics: 0 new, 3 already present\n"
        "  demo-electricity-greenbutton.xml: 0 new, 500 already present\n"
    )


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.stdout == "pds, version 0.1.0\n"


def test_a_closed_pipe_ends_quietly(vault, tmp_path) -> None:
    """`pds records | head -1`: the reader stops early; no error, no stack trace."""
    import os
    import subprocess
    import sys

    from pds.demo import write_synthetic_midata
    from pds.importer import import_file

    import_file(vault, write_synthetic_midata(tmp_path / "many.csv", 3000))
    env = {**os.environ, "PDS_HOME": str(vault.settings.home), "PDS_PASSPHRASE": PASSPHRASE}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pds", "records", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout.read(1) == b"["
    proc.stdout.close()  # like head: gone long before pds has written ~1 MB
    assert proc.wait(timeout=60) == 0
    with proc.stderr:
        assert proc.stderr.read() == b""
