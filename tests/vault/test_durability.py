"""Crash safety and confidentiality: SIGKILL mid-import, crash mid passphrase change, and
no plaintext in the vault file, its WAL, or a backup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pds.demo import write_synthetic_midata
from pds.errors import VaultLocked
from pds.importer import import_file
from pds.settings import Settings, load_settings
from pds.vault import Vault
from tests.conftest import PASSPHRASE
from tests.factories import midata_file

PDS = [sys.executable, "-m", "pds"]


def pds_env(home: Path, passphrase: str = PASSPHRASE) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PDS_")}
    env.update(PDS_HOME=str(home), PDS_PASSPHRASE=passphrase)
    return env


def count(home: Path, passphrase: str = PASSPHRASE) -> int:
    with Vault.open(load_settings({"PDS_HOME": str(home)}), passphrase) as v:
        return v.status()["records"]


@pytest.mark.slow
def test_sigkill_mid_import_leaves_all_or_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    subprocess.run([*PDS, "init"], env=pds_env(home), check=True, capture_output=True)
    rows = 150_000
    big = write_synthetic_midata(tmp_path / "big.csv", rows)
    wal = home / "vault.db-wal"
    proc = subprocess.Popen([*PDS, "import", str(big)], env=pds_env(home))
    deadline = time.monotonic() + 60
    # Kill once the import has spilled pages into the WAL: the transaction is under way.
    while time.monotonic() < deadline and proc.poll() is None:
        if wal.exists() and wal.stat().st_size > 4 * 1024 * 1024:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the import finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert count(home) == 0
    done = subprocess.run(
        [*PDS, "import", "--json", str(big)], env=pds_env(home), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert '"new": 150000' in done.stdout
    assert count(home) == rows
    again = subprocess.run(
        [*PDS, "import", "--json", str(big)], env=pds_env(home), capture_output=True, text=True
    )
    assert '"new": 0' in again.stdout
    assert '"duplicate": 150000' in again.stdout


@pytest.mark.slow
def test_crash_during_passphrase_change_leaves_one_working(tmp_path: Path) -> None:
    home = tmp_path / "home"
    subprocess.run([*PDS, "init"], env=pds_env(home), check=True, capture_output=True)
    pristine = (home / "vault.db").read_bytes()
    newfile = tmp_path / "new.txt"
    newfile.write_text("the new passphrase\n")
    outcomes = set()
    # From before the process starts work to after it has finished, in small steps.
    # The last run is not killed: on a loaded machine no fixed delay is sure to come after it.
    for delay in [0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5, None]:
        for suffix in ("-wal", "-shm"):
            (home / f"vault.db{suffix}").unlink(missing_ok=True)
        (home / "vault.db").write_bytes(pristine)
        proc = subprocess.Popen(
            [*PDS, "passphrase", "--new-passphrase-file", str(newfile)],
            env=pds_env(home),
            stdout=subprocess.DEVNULL,
        )
        if delay is None:
            assert proc.wait(timeout=300) == 0
        else:
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        works = []
        for candidate in (PASSPHRASE, "the new passphrase"):
            try:
                count(home, candidate)
                works.append(candidate)
            except VaultLocked:
                pass
        assert len(works) == 1, f"after a kill at {delay}s: {works}"
        outcomes.add(works[0])
    assert outcomes == {PASSPHRASE, "the new passphrase"}


CANARY = "CANARY-Q7XJ2-ZEBRA-PLUM"


def test_canary_absent_from_vault_wal_and_backup(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "v")
    path = midata_file(tmp_path / "c.csv", [("02/03/2024", "VIS", CANARY, "-3.20", "96.80")])
    with Vault.create(settings, PASSPHRASE) as vault:
        summary = import_file(vault, path)
        assert summary.new == 1
        # The record is there and readable through the vault...
        assert [r.payload["description"] for r in vault.records()] == [CANARY]
        wal = settings.home / "vault.db-wal"
        assert wal.stat().st_size > 0
        backup = vault.backup(tmp_path / "b.db")
        # ...and nowhere in the bytes on disk, in any encoding a reader might try.
        for f in (settings.db_path, wal, backup):
            data = f.read_bytes()
            for form in (CANARY.encode(), CANARY.encode("utf-16-le"), CANARY.lower().encode()):
                assert form not in data, f"{f.name} holds the canary"
