"""deploy/entrypoint.sh, the image's entrypoint, run as it is (by /bin/sh) outside a container.

On an empty PDS_HOME it creates the vault and serves; on a current vault it serves; on a
vault of an older pds (``tests/fixtures/vaults/schema-3``) it backs the vault up, upgrades
it and serves. Each server is the real `pds serve`, asked for /healthz, then stopped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pds.db import SCHEMA_VERSION
from tests.conftest import ROOT, fixture
from tests.servers import answers, free_port, get, running

ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
STRONG = "pewter lantern orchard migrate"
OLD_PASSPHRASE = "copper kettle winter orchard"
UID = os.getuid()


def base_env(home: Path | None, passphrase_file: Path | None) -> dict[str, str]:
    """The machine's environment without PDS_* settings, with this venv's `pds` on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PDS_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    if home is not None:
        env["PDS_HOME"] = str(home)
    if passphrase_file is not None:
        env["PDS_PASSPHRASE_FILE"] = str(passphrase_file)
    return env


def secret(tmp_path: Path, passphrase: str) -> Path:
    path = tmp_path / "pds_passphrase"
    path.write_text(passphrase + "\n", encoding="utf-8")
    path.chmod(0o400)
    return path


def entrypoint(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(ENTRYPOINT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[tuple[int, subprocess.Popen]]:
    """The entrypoint running `pds serve` on a free loopback port until /healthz answers;
    stopped (SIGTERM to its process group) when the block ends."""
    port = free_port()
    argv = ["/bin/sh", str(ENTRYPOINT), "pds", "serve", "--host", "127.0.0.1", "--port", str(port)]
    healthz = f"http://127.0.0.1:{port}/healthz"
    with running(argv, log, answers(healthz), env=env, what="the entrypoint") as proc:
        status, _, body = get(healthz)
        assert (status, json.loads(body)) == (200, {"status": "ok"})
        yield port, proc


def status(env: dict[str, str]) -> dict:
    """`pds status --json` through the entrypoint (a command other than serve runs as is)."""
    done = entrypoint(env, "pds", "status", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def user_version(path: Path) -> int:
    conn = sqlite3.connect(f"{path.as_uri()}?immutable=1", uri=True)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


# -- empty, current and old-schema folders -----------------------------------------------------


@pytest.mark.slow
def test_an_empty_folder_gets_a_vault_then_is_served(tmp_path: Path) -> None:
    home = tmp_path / "data"
    env = base_env(home, secret(tmp_path, STRONG))
    log = tmp_path / "serve.log"
    with serving(env, log):
        pass
    assert log.read_text().splitlines()[:3] == [
        f"No vault in {home}: creating one with the passphrase in {tmp_path / 'pds_passphrase'}.",
        f"Created an encrypted vault at {home}.",
        "Keep the passphrase safe: without it the data cannot be read by anyone.",
    ]
    st = status(env)
    assert (st["home"], st["schema_version"], st["records"]) == (str(home), SCHEMA_VERSION, 0)
    assert not (home / "backups").exists()
    assert not list(home.glob(".pds-write-check*"))


@pytest.mark.slow
def test_a_current_vault_is_served_as_it_is(tmp_path: Path) -> None:
    home = tmp_path / "data"
    env = base_env(home, secret(tmp_path, STRONG))
    done = subprocess.run(["pds", "init"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    for round_ in range(2):
        log = tmp_path / f"serve-{round_}.log"
        with serving(env, log):
            pass
        assert log.read_text().splitlines()[0] == (
            f"The vault at {home} is at schema {SCHEMA_VERSION}, the newest this pds knows; "
            "nothing to do."
        )
    assert not (home / "backups").exists()
    assert status(env)["records"] == 0


@pytest.mark.slow
def test_an_old_vault_is_backed_up_upgraded_and_served(tmp_path: Path) -> None:
    home = tmp_path / "data"
    home.mkdir()
    shutil.copyfile(fixture("vaults/schema-3/vault.db"), home / "vault.db")
    env = base_env(home, secret(tmp_path, OLD_PASSPHRASE))
    log = tmp_path / "serve.log"
    with serving(env, log):
        pass
    (backup,) = (home / "backups").iterdir()
    assert re.fullmatch(r"pds-before-upgrade-schema-3-\d{4}-\d\d-\d\dT\d{6}Z\.db", backup.name)
    assert log.read_text().splitlines()[:2] == [
        f"Backed up the vault as it was (schema 3) to {backup}.",
        f"Upgraded the vault at {home} from schema 3 to {SCHEMA_VERSION}.",
    ]
    assert user_version(backup) == 3
    st = status(env)
    assert (st["schema_version"], st["records"], st["sources"]) == (SCHEMA_VERSION, 12, 5)
    # Started again: nothing more to upgrade, no second backup.
    with serving(env, tmp_path / "again.log"):
        pass
    assert list((home / "backups").iterdir()) == [backup]


def test_a_newer_vault_stops_it(tmp_path: Path) -> None:
    home = tmp_path / "data"
    home.mkdir()
    shutil.copyfile(fixture("vaults/schema-3/vault.db"), home / "vault.db")
    conn = sqlite3.connect(home / "vault.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    done = entrypoint(base_env(home, secret(tmp_path, OLD_PASSPHRASE)), "pds", "serve")
    assert done.returncode == 1
    assert done.stderr == (
        f"Error: this vault uses schema version {SCHEMA_VERSION + 1}, "
        f"but this pds only knows versions up to {SCHEMA_VERSION}\n"
        "Hint: Upgrade pds to the version that wrote this vault, or restore an older backup.\n"
    )
    assert not (home / "backups").exists()


# -- what it refuses, with one line each ----------------------------------------------------------


def test_a_weak_passphrase_is_refused_with_the_reason(tmp_path: Path) -> None:
    home = tmp_path / "data"
    env = base_env(home, secret(tmp_path, "password1"))
    for _ in range(2):
        done = entrypoint(env, "pds", "serve")
        assert done.returncode == 1
        assert done.stdout == (
            f"No vault in {home}: creating one with the passphrase in {tmp_path / 'pds_passphrase'}.\n"
        )
        error, hint = done.stderr.splitlines()
        assert error == (
            "Error: that passphrase is too weak (this is a very common password; it could be "
            "guessed in less than a second)"
        )
        assert re.fullmatch(
            r'Hint: Use four or more random words, e\.g\. "[a-z]+ [a-z]+ [a-z]+ [a-z]+" \(picked '
            r"at random just now; do not reuse an example printed anywhere\)\. .+",
            hint,
        ), hint
        assert os.listdir(home) == []


@pytest.mark.parametrize(
    ("args", "host"),
    [
        ((), "0.0.0.0"),  # noqa: S104 (what the refusal names, not a bind)
        (("--workers", "4"), "0.0.0.0"),  # noqa: S104
        (("pds", "serve", "--host", "::"), "::"),
        (("pds", "serve", "--port", "9000", "--host=192.0.2.7"), "192.0.2.7"),
    ],
)
def test_serving_beyond_loopback_needs_an_issuer(tmp_path: Path, args: tuple, host: str) -> None:
    home = tmp_path / "data"
    done = entrypoint(base_env(home, secret(tmp_path, STRONG)), *args)
    assert done.returncode == 1
    assert done.stderr == (
        f"Error: PDS_ISSUER is not set, and pds serves on {host}, not on loopback\n"
        "Hint: Set PDS_ISSUER to the https address clients reach the vault at, e.g. "
        "https://vault.example.org (http://127.0.0.1:8000 to try it on this machine only).\n"
    )
    assert not home.exists()


def test_no_passphrase_file(tmp_path: Path) -> None:
    home = tmp_path / "data"
    done = entrypoint(base_env(home, None), "pds", "serve")
    assert done.returncode == 1
    assert done.stderr == (
        "Error: PDS_PASSPHRASE_FILE is not set\n"
        "Hint: Give the vault's passphrase as a secret file: "
        "PDS_PASSPHRASE_FILE=/run/secrets/pds_passphrase.\n"
    )
    assert os.listdir(home) == []


def test_a_missing_or_unreadable_passphrase_file(tmp_path: Path) -> None:
    home = tmp_path / "data"
    missing = tmp_path / "run" / "secrets" / "pds_passphrase"
    done = entrypoint(base_env(home, missing), "pds", "serve")
    assert done.returncode == 1
    assert done.stderr == (
        f"Error: PDS_PASSPHRASE_FILE {missing} does not exist\n"
        "Hint: Mount the passphrase there as a secret (compose.yaml: secrets: pds_passphrase).\n"
    )
    folder = tmp_path / "a-folder"
    folder.mkdir()
    done = entrypoint(base_env(home, folder), "pds", "serve")
    assert done.returncode == 1
    assert done.stderr == (
        f"Error: cannot read PDS_PASSPHRASE_FILE {folder} (running as uid {UID})\n"
        "Hint: Make it a file uid 10001 can read.\n"
    )
    assert os.listdir(home) == []


def test_pds_home_unset_uncreatable_or_unwritable(tmp_path: Path) -> None:
    pfile = secret(tmp_path, STRONG)
    done = entrypoint(base_env(None, pfile), "pds", "serve")
    assert done.returncode == 1
    assert done.stderr == (
        "Error: PDS_HOME is not set\nHint: Set it to the folder of the vault (the image sets /data).\n"
    )
    (tmp_path / "a-file").write_text("x")
    inside = tmp_path / "a-file" / "data"
    done = entrypoint(base_env(inside, pfile), "pds", "serve")
    assert done.returncode == 1
    assert done.stderr == (
        f"Error: cannot create PDS_HOME {inside} (running as uid {UID})\n"
        "Hint: Mount a folder or volume there that uid 10001 owns: chown -R 10001:10001 FOLDER\n"
    )
    # /proc takes no new files, not even from root.
    done = entrypoint(base_env(Path("/proc"), pfile), "pds", "serve")
    assert done.returncode == 1
    assert done.stderr == (
        f"Error: cannot write to PDS_HOME /proc (running as uid {UID})\n"
        "Hint: Give the folder or volume to uid 10001: chown -R 10001:10001 FOLDER\n"
    )


@pytest.mark.parametrize("name", ["backups", ".vault.db.swp", "..odd", "vault.db-wal"])
def test_a_folder_with_other_files_is_not_made_a_vault(tmp_path: Path, name: str) -> None:
    home = tmp_path / "data"
    home.mkdir()
    if name == "backups":
        (home / name).mkdir()
    else:
        (home / name).write_bytes(b"x")
    done = entrypoint(base_env(home, secret(tmp_path, STRONG)), "pds", "serve")
    assert done.returncode == 1
    assert done.stderr == (
        f"Error: PDS_HOME {home} holds files but no vault.db; no vault was created there\n"
        "Hint: Point PDS_HOME at the vault's folder, or restore a backup: pds restore FILE --yes\n"
    )
    assert os.listdir(home) == [name]


@pytest.mark.slow
def test_a_new_volumes_lost_and_found_does_not_count(tmp_path: Path) -> None:
    home = tmp_path / "data"
    (home / "lost+found").mkdir(parents=True)
    env = base_env(home, secret(tmp_path, STRONG))
    with serving(env, tmp_path / "serve.log"):
        pass
    assert sorted(p.name for p in home.iterdir() if p.name in ("lost+found", "vault.db")) == [
        "lost+found",
        "vault.db",
    ]


# -- other commands run as they are ----------------------------------------------------------------


def test_other_commands_run_as_given(tmp_path: Path) -> None:
    home = tmp_path / "data"
    env = base_env(home, secret(tmp_path, STRONG))
    done = entrypoint(env, "pds", "--version")
    assert (done.returncode, done.stdout) == (0, "pds, version 0.1.0\n")
    done = entrypoint(env, "sh", "-c", 'echo "$PDS_HOME"')
    assert (done.returncode, done.stdout) == (0, f"{home}\n")
    # No vault is made for them: `pds status` on an empty folder says there is none.
    done = entrypoint(env, "pds", "status")
    assert done.returncode == 1
    assert done.stderr == (
        f"Error: no vault at {home}\n"
        "Hint: Create one with `pds init`, or point PDS_HOME at an existing vault.\n"
    )
    assert not home.exists()


# -- what counts as loopback: pds's own rule ----------------------------------------------------

HOSTS = [
    *("localhost", "Localhost", "localhost.", "app.localhost", ""),
    *("127.0.0.1", "127.1.2.3", "127.255.255.255", "127.0.0.0", "127.256.0.1", "127.0.0.01"),
    *("127.000.0.1", "127.0.0.1.", "127..0.1", "127.0.0", "127.0.0.1.2", "127.1", "127.*.0.1"),
    *("127.0.0.1 ", " 127.0.0.1", "127.0.0.1\nx", "128.0.0.1", "0x7f.0.0.1", "127.0.0.1:8000"),
    *("127.attacker.example", "127.0.0.1.nip.io", "1270.0.0.1"),
    *("::1", "[::1]", "::01", "::0001", "::00001", "0:0:0:0:0:0:0:1", "0::1", "0:0::1"),
    *("0000:0000:0000:0000:0000:0000:0000:0001", "::0:1", "::0:0:0:0:0:0:1"),
    *("::0:0:0:0:0:0:0:1", "0:0:0:0:0:0:0::1", ":0::1", "::1:", "::", ":::1", "::1::"),
    *("::1%lo", "::1%", "::1%a%b", "::1%lo/64", "::0.0.0.1", "0:0:0:0:0:0:0.0.0.1"),
    *("::00.0.0.1", "::0:0:0:0:0:0.0.0.1", "::0:0:0:0:0:0:0.0.0.1", "::1/128", "1::", "::10"),
    *("::2", "0:0:0:0:0:0:1", "0:0:0:0:0:0:0:0:1", "1::1", "::0:1:1", "::11", ":1", "::1:0"),
    *("0.0.0.0", "::", "192.0.2.7", "2001:db8::1"),  # noqa: S104 - names, not binds
]


def test_the_loopback_rule_is_pds_own() -> None:
    """The entrypoint lets `pds serve` on a host without PDS_ISSUER exactly when pds would
    (pds.net.loopback_host): its refusal, or the next check (PDS_HOME unset), says which."""
    from pds.net import loopback_host

    refused = {}
    for host in HOSTS:
        done = entrypoint(base_env(None, None), "pds", "serve", "--host", host)
        assert done.returncode == 1
        refused[host] = done.stderr.startswith("Error: PDS_ISSUER is not set")
        if not refused[host]:
            assert done.stderr.startswith("Error: PDS_HOME is not set\n"), (host, done.stderr)
    assert refused == {host: not loopback_host(host) for host in HOSTS}
    assert sorted(h for h in HOSTS if not refused[h]) == sorted(
        [
            *("localhost", "127.0.0.1", "127.1.2.3", "127.255.255.255", "127.0.0.0", "::1"),
            *("::01", "::0001", "0:0:0:0:0:0:0:1", "0::1", "0:0::1", "::0:1", "::1%lo"),
            *("0000:0000:0000:0000:0000:0000:0000:0001", "::0:0:0:0:0:0:1", "::0.0.0.1"),
            *("0:0:0:0:0:0:0.0.0.1", "::0:0:0:0:0:0.0.0.1"),
        ]
    )
