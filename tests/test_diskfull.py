"""A full disk during a write: said as such (the folder named), never as a bug, and the
vault left exactly as it was. The disk is really full: a 2 MiB tmpfs where the machine
lets the tests mount one (root), else SQLite's ``max_page_count``, which fails a write
with the same SQLITE_FULL and the same automatic rollback."""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pds import db as dbmod
from pds.audit.verify import verify
from pds.cli import cli
from pds.diskfull import DiskFull, is_disk_full
from pds.importer import import_file
from pds.rights.export import export_to
from pds.settings import Settings
from pds.vault import Vault
from tests.conftest import FAST_KDF, PASSPHRASE, fixture
from tests.http.web.test_pages import upload
from tests.oauth_kit import csrf

MIDATA = fixture("midata/midata-spec-example.csv")


def _big_csv(path: Path, rows: int = 40_000) -> Path:
    lines = ["Date,Type,Merchant/Description,Debit/Credit,Balance"]
    lines += [f"{1 + i % 28:02d}/01/2024,VIS,Shop number {i},-{i}.00,{i}.00" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB file system of its own (a tmpfs), unmounted afterwards."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _state(vault: Vault) -> tuple[int, int, int, bool]:
    """Records, sources, log entries, and whether the signed log verifies."""
    conn = vault.conn
    sources = conn.execute("SELECT count(*) FROM sources").fetchone()[0]
    entries = conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    return vault.status()["records"], sources, entries, verify(vault.log_source()).ok


def _fill(folder: Path) -> None:
    """Fill the file system holding ``folder`` but for 1 KiB."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
        os.ftruncate(fd, max(os.fstat(fd).st_size - 1024, 0))
    finally:
        os.close(fd)


def test_import_on_a_full_disk_says_so_and_keeps_the_vault(small_disk: Path, tmp_path) -> None:
    home = small_disk / "vault"
    vault = Vault.create(Settings(home=home, kdf=FAST_KDF), PASSPHRASE)
    import_file(vault, MIDATA)
    before = _state(vault)
    assert before == (6, 1, 2, True)
    big = _big_csv(tmp_path / "big.csv")
    message = (
        f"the disk holding {home} is full; free some space and import again (nothing was imported)"
    )
    for _ in range(3):  # the first, and again: the writer lock was given back each time
        with pytest.raises(DiskFull) as exc:
            import_file(vault, big)
        assert exc.value.message == message
        assert exc.value.status == 507
        assert not vault.conn.in_transaction
        assert _state(vault) == before
    vault.close()
    with Vault.open(Settings(home=home, kdf=FAST_KDF), PASSPHRASE) as again:
        assert _state(again) == before
        small = _big_csv(tmp_path / "small.csv", rows=50)
        assert import_file(again, small).new == 50  # room enough for a small file still


def test_pds_import_on_a_full_disk_is_one_error_line(small_disk: Path, tmp_path) -> None:
    home = small_disk / "vault"
    Vault.create(Settings(home=home, kdf=FAST_KDF), PASSPHRASE).close()
    runner = CliRunner(env={"PDS_HOME": str(home), "PDS_PASSPHRASE": PASSPHRASE})
    big = _big_csv(tmp_path / "big.csv")
    result = runner.invoke(cli, ["import", str(big), str(MIDATA)])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"Error: the disk holding {home} is full; free some space and import again "
        "(nothing was imported)"
    )
    assert "bug" not in result.stderr
    assert (
        result.stdout == "midata-spec-example.csv: 6 new, 0 already present, 0 rejected (midata)\n"
    )
    status = runner.invoke(cli, ["status", "--json"])
    assert '"records": 6' in status.stdout


def test_page_limit_full_database_rolls_back_cleanly(vault: Vault, tmp_path) -> None:
    """Without a small disk: SQLite's page limit gives the same SQLITE_FULL."""
    import_file(vault, MIDATA)
    before = _state(vault)
    pages = vault.conn.execute("PRAGMA page_count").fetchone()[0]
    vault.conn.execute(f"PRAGMA max_page_count={pages + 20}")
    big = _big_csv(tmp_path / "big.csv")
    for _ in range(2):
        with pytest.raises(DiskFull) as exc:
            import_file(vault, big)
        assert exc.value.message == (
            f"the disk holding {vault.settings.home} is full; free some space and import "
            "again (nothing was imported)"
        )
        assert _state(vault) == before
    vault.conn.execute("PRAGMA max_page_count=1073741823")
    assert import_file(vault, big).new == 40_000


def test_other_writes_on_a_full_vault_say_so(vault: Vault) -> None:
    pages = vault.conn.execute("PRAGMA page_count").fetchone()[0]
    vault.conn.execute(f"PRAGMA max_page_count={pages}")
    with pytest.raises(DiskFull) as exc, dbmod.transaction(vault.conn):
        vault.conn.execute("INSERT INTO meta (key, value) VALUES ('x', zeroblob(100000))")
    assert exc.value.message == (
        f"the disk holding {vault.settings.home} is full; free some space and try again "
        "(nothing was changed)"
    )
    assert vault.conn.execute("SELECT count(*) FROM meta WHERE key = 'x'").fetchone()[0] == 0


def test_backup_to_a_full_disk(small_disk: Path, vault: Vault) -> None:
    import_file(vault, MIDATA)
    vault.conn.execute("INSERT INTO meta (key, value) VALUES ('pad', randomblob(3000000))")
    before = _state(vault)
    for _ in range(2):
        with pytest.raises(DiskFull) as exc:
            vault.backup(small_disk)
        assert exc.value.message == (
            f"the disk holding {small_disk} is full; free some space and back up again "
            "(no backup was written)"
        )
        assert list(small_disk.iterdir()) == []  # no half backup left behind
    assert _state(vault)[:2] == before[:2]
    assert verify(vault.log_source()).ok


def test_export_to_a_full_disk(small_disk: Path, vault: Vault) -> None:
    import_file(vault, MIDATA)
    _fill(small_disk)
    names = sorted(p.name for p in small_disk.iterdir())
    target = small_disk / "out.zip"
    with pytest.raises(DiskFull) as exc:
        export_to(vault, target)
    assert exc.value.message == (
        f"the disk holding {small_disk} is full; free some space and export again "
        "(no export was written)"
    )
    assert sorted(p.name for p in small_disk.iterdir()) == names


def test_web_upload_on_a_full_vault(kit, vault: Vault, tmp_path) -> None:
    """The import job's connection (the job thread's) finds the vault full: the job fails
    with the CLI's message, and the vault is unchanged."""
    kit.login()
    pages = vault.conn.execute("PRAGMA page_count").fetchone()[0]
    vault.conn.execute(f"PRAGMA max_page_count={pages + 2}")
    before = vault.status()["records"]
    resp = upload(kit, _big_csv(tmp_path / "big.csv", rows=2000))
    assert resp.status_code == 200
    assert (
        f"Error: the disk holding {vault.settings.home} is full; free some space and import "
        "again (nothing was imported)"
    ) in resp.text
    assert vault.status()["records"] == before
    assert list((vault.settings.home / "jobs").iterdir()) == []


def test_web_upload_to_a_full_disk_keeps_nothing(small_disk: Path, kit, vault: Vault) -> None:
    """The uploaded file does not fit in $PDS_HOME/jobs: refused at once, no file, no job."""
    (vault.settings.home / "jobs").symlink_to(small_disk)
    kit.login()
    page = kit.http.get("/import")
    _fill(small_disk)
    names = sorted(p.name for p in small_disk.iterdir())
    big = _big_csv(small_disk.parent / "big.csv", rows=2000)
    resp = kit.http.post(
        "/import",
        data={"csrf_token": csrf(page.text), "file": (io.BytesIO(big.read_bytes()), "big.csv")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 507
    assert (
        f"Error: the disk holding {vault.settings.home / 'jobs'} is full; free some space and "
        "import again (nothing was imported)"
    ) in resp.text
    assert sorted(p.name for p in small_disk.iterdir()) == names
    assert vault.conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0


def test_is_disk_full() -> None:
    full = sqlite3.connect(":memory:")
    full.execute("CREATE TABLE t (x)")
    full.execute("PRAGMA max_page_count=2")
    with pytest.raises(sqlite3.OperationalError) as exc:
        full.execute("INSERT INTO t VALUES (zeroblob(100000))")
    assert is_disk_full(exc.value)
    assert is_disk_full(OSError(28, "No space left on device"))
    assert not is_disk_full(OSError(13, "Permission denied"))
    assert not is_disk_full(sqlite3.OperationalError("no such table: x"))
    assert not is_disk_full(io.UnsupportedOperation("x"))


def test_access_log_entry_on_a_full_vault(vault: Vault) -> None:
    """The access log's own commits (the API's and web's entries) say it too."""
    pages = vault.conn.execute("PRAGMA page_count").fetchone()[0]
    vault.conn.execute(f"PRAGMA max_page_count={pages}")
    written = [0]

    def fill() -> None:
        for _ in range(10_000):
            vault.audit("backup", actor="owner")
            written[0] += 1

    with pytest.raises(DiskFull) as exc:
        fill()
    assert exc.value.message == (
        f"the disk holding {vault.settings.home} is full; free some space and try again "
        "(nothing was changed)"
    )
    entries = vault.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    assert entries == 1 + written[0]  # vault.init, then each entry that fitted; not the last
    assert not vault.conn.in_transaction
    vault.conn.execute("PRAGMA max_page_count=1073741823")
    vault.audit("backup", actor="owner")
    assert verify(vault.log_source()).ok
