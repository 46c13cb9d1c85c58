"""The systemd units in deploy/: checked by systemd's own `systemd-analyze` (verify and the
offline security review), their hardening directives exactly, and pds itself run under the
one restriction the checks cannot try out here (MemoryDenyWriteExecute)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE, ROOT, TESTS, fixture
from tests.servers import NODE, flow_ok, free_port, get, openid_flow, serving
from tests.vault.test_durability import pds_env

DEPLOY = ROOT / "deploy"
UNITS = ("pds.service", "pds-backup.service", "pds-backup.timer", "pds-litestream.service")
ANALYZE = "/usr/bin/systemd-analyze"
SHIPPED_BIN = "/opt/pds/.venv/bin/"
BIN = Path(sys.executable).parent  # this checkout's venv: pds and litestream are installed here
WXBAN = [sys.executable, str(TESTS / "wxban.py")]


def directives(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) of every directive line, in order (keys may repeat)."""
    out = []
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key, value))
    return out


def local_copies(folder: Path) -> dict[str, Path]:
    """The units with ExecStart pointed at this checkout's venv (``systemd-analyze verify``
    checks that the program exists), byte for byte the shipped ones otherwise."""
    folder.mkdir(exist_ok=True)
    out = {}
    for name in UNITS:
        shipped = (DEPLOY / name).read_text()
        copy = shipped.replace(SHIPPED_BIN, f"{BIN}/")
        changed = [
            (a, b) for a, b in zip(shipped.splitlines(), copy.splitlines(), strict=True) if a != b
        ]
        assert all(a.startswith(("ExecStart=", "ExecStartPre=")) for a, _ in changed), changed
        (folder / name).write_text(copy)
        out[name] = folder / name
    return out


def analyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True, check=False)


def test_the_programs_the_units_start() -> None:
    starts = {
        name: [
            v
            for s, k, v in directives((DEPLOY / name).read_text())
            if k in ("ExecStartPre", "ExecStart")
        ]
        for name in UNITS
    }
    assert starts == {
        "pds.service": [
            "/opt/pds/.venv/bin/pds upgrade",
            "/opt/pds/.venv/bin/pds serve --host 127.0.0.1 --port 8000",
        ],
        "pds-backup.service": ["/opt/pds/.venv/bin/pds backup /var/backups/pds --keep 14"],
        "pds-backup.timer": [],
        "pds-litestream.service": [
            "/opt/pds/.venv/bin/litestream replicate -config /etc/pds/litestream.yml"
        ],
    }
    assert (BIN / "pds").is_file()
    assert (BIN / "litestream").is_file()


def test_systemd_analyze_verify_is_silent(tmp_path: Path) -> None:
    units = local_copies(tmp_path)
    done = analyze("verify", *(str(p) for p in units.values()))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_verify_catches_a_bad_unit(tmp_path: Path) -> None:
    """The check above can fail: a misspelt value and an unknown directive are reported."""
    unit = local_copies(tmp_path)["pds.service"]
    text = unit.read_text()
    unit.write_text(
        text.replace("ProtectSystem=strict", "ProtectSystem=strcit").replace(
            "NoNewPrivileges=yes", "NoNewPrivileges=yes\nProtectEverything=yes"
        )
    )
    added = unit.read_text().splitlines().index("ProtectEverything=yes") + 1
    done = analyze("verify", str(unit))
    # exit status 0 all the same: only the silence above tells a clean unit
    assert (done.returncode, done.stdout) == (0, "")
    assert done.stderr == (
        f"{unit}:{added}: Unknown key 'ProtectEverything' in section [Service], ignoring.\n"
        f"{unit}:{added + 1}: Failed to parse protect system value, ignoring: strcit\n"
    )


HARDENING = [
    ("NoNewPrivileges", "yes"),
    ("ProtectSystem", "strict"),
    ("ProtectHome", "yes"),
    ("PrivateTmp", "yes"),
    ("PrivateDevices", "yes"),
    ("PrivateMounts", "yes"),
    ("PrivateUsers", "yes"),
    ("ProtectKernelTunables", "yes"),
    ("ProtectKernelModules", "yes"),
    ("ProtectKernelLogs", "yes"),
    ("ProtectControlGroups", "yes"),
    ("ProtectClock", "yes"),
    ("ProtectHostname", "yes"),
    ("ProtectProc", "invisible"),
    ("ProcSubset", "pid"),
    ("RestrictNamespaces", "yes"),
    ("RestrictRealtime", "yes"),
    ("RestrictSUIDSGID", "yes"),
    ("LockPersonality", "yes"),
    ("MemoryDenyWriteExecute", "yes"),
    ("RemoveIPC", "yes"),
    ("CapabilityBoundingSet", ""),
    ("AmbientCapabilities", ""),
    ("SystemCallArchitectures", "native"),
    ("SystemCallFilter", "@system-service"),
    ("SystemCallFilter", "~@privileged @resources"),
    ("SystemCallErrorNumber", "EPERM"),
]
RUN_AS_PDS = [
    ("Type", "exec"),
    ("User", "pds"),
    ("Group", "pds"),
    ("StateDirectory", "pds"),
    ("StateDirectoryMode", "0700"),
    ("UMask", "0077"),
]


def service(name: str) -> list[tuple[str, str]]:
    return [(k, v) for s, k, v in directives((DEPLOY / name).read_text()) if s == "Service"]


def test_pds_service_directives() -> None:
    assert service("pds.service") == [
        *RUN_AS_PDS[:5],
        ("WorkingDirectory", "/var/lib/pds"),
        RUN_AS_PDS[5],
        ("LoadCredential", "passphrase:/etc/pds/passphrase"),
        ("Environment", "PDS_HOME=/var/lib/pds"),
        ("Environment", "PDS_PASSPHRASE_FILE=%d/passphrase"),
        ("Environment", "PDS_PROXY_HOPS=1"),
        ("ExecStartPre", "/opt/pds/.venv/bin/pds upgrade"),
        ("ExecStart", "/opt/pds/.venv/bin/pds serve --host 127.0.0.1 --port 8000"),
        ("Restart", "on-failure"),
        ("RestartSec", "2s"),
        ("TimeoutStopSec", "30s"),
        *HARDENING[:23],
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        *HARDENING[23:],
    ]
    assert ("DynamicUser", "yes") not in service("pds.service")


def test_backup_service_and_timer_directives() -> None:
    assert service("pds-backup.service") == [
        ("Type", "oneshot"),
        *RUN_AS_PDS[1:],
        ("LoadCredential", "passphrase:/etc/pds/passphrase"),
        ("Environment", "PDS_HOME=/var/lib/pds"),
        ("Environment", "PDS_PASSPHRASE_FILE=%d/passphrase"),
        ("ExecStart", "/opt/pds/.venv/bin/pds backup /var/backups/pds --keep 14"),
        ("ReadWritePaths", "/var/backups/pds"),
        ("Nice", "10"),
        ("IOSchedulingClass", "idle"),
        ("PrivateNetwork", "yes"),
        *HARDENING[:23],
        ("RestrictAddressFamilies", "AF_UNIX"),
        *HARDENING[23:],
    ]
    timer = directives((DEPLOY / "pds-backup.timer").read_text())
    assert [(k, v) for s, k, v in timer if s == "Timer"] == [
        ("OnCalendar", "daily"),
        ("Persistent", "true"),
        ("RandomizedDelaySec", "1h"),
    ]
    assert ("Install", "WantedBy", "timers.target") in timer
    done = analyze("calendar", "daily")
    assert done.returncode == 0
    assert "Normalized form: *-*-* 00:00:00" in done.stdout


def test_litestream_service_directives() -> None:
    got = service("pds-litestream.service")
    assert got == [
        *RUN_AS_PDS,
        ("ExecStart", "/opt/pds/.venv/bin/litestream replicate -config /etc/pds/litestream.yml"),
        ("Restart", "on-failure"),
        ("RestartSec", "5s"),
        ("ReadWritePaths", "-/mnt/pds-replica"),
        ("EnvironmentFile", "-/etc/pds/litestream.env"),
        *HARDENING[:23],
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        *HARDENING[23:],
    ]
    assert not any(k == "LoadCredential" for k, _ in got)  # it never needs the passphrase


@pytest.mark.parametrize(
    ("name", "threshold"),
    [("pds.service", 11), ("pds-backup.service", 4), ("pds-litestream.service", 11)],
)
def test_systemd_analyze_security_offline(tmp_path: Path, name: str, threshold: int) -> None:
    """systemd's own exposure score (0 = locked down, 10 = wide open), run on the file."""
    unit = local_copies(tmp_path)[name]
    done = analyze("security", "--offline=true", f"--threshold={threshold}", str(unit))
    assert done.returncode == 0, done.stdout + done.stderr
    score = re.search(rf"Overall exposure level for {name}: (\d+\.\d)", done.stdout)
    assert score is not None, done.stdout
    assert float(score[1]) <= threshold / 10
    # one point stricter fails: the threshold is the score, not a loose bound
    done = analyze("security", "--offline=true", f"--threshold={threshold - 1}", str(unit))
    assert done.returncode != 0


# -- pds under MemoryDenyWriteExecute --------------------------------------------------------


def test_wxban_refuses_writable_executable_memory() -> None:
    """The wrapper does refuse W+X memory (so the runs below are a real check)."""
    probe = (
        "import mmap\n"
        "try:\n"
        "    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
        "    print('allowed')\n"
        "except PermissionError:\n"
        "    print('refused')\n"
    )
    run = [sys.executable, "-c", probe]
    assert subprocess.run(run, capture_output=True, text=True, check=True).stdout == "allowed\n"
    banned = subprocess.run([*WXBAN, *run], capture_output=True, text=True, check=True)
    assert banned.stdout == "refused\n"


def banned_pds(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [*WXBAN, sys.executable, "-m", "pds", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_pds_works_with_memory_deny_write_execute(tmp_path: Path) -> None:
    """Argon2id, AES-GCM, Ed25519 (cryptography/OpenSSL), SQLite, gunicorn and the whole
    OAuth flow of a strict client, every pds process under the W^X ban."""
    assert NODE, "node is needed (make test installs it)"
    home = tmp_path / "home"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    passfile = tmp_path / "passphrase"
    passfile.write_text(PASSPHRASE + "\n")
    env = {**pds_env(home), "PDS_ISSUER": base, "PDS_PASSPHRASE_FILE": str(passfile)}
    del env["PDS_PASSPHRASE"]
    banned_pds(env, "demo")
    imported = json.loads(
        banned_pds(env, "import", str(fixture("midata/midata-spec-example.csv")), "--json")
    )
    assert imported["new"] == 6
    (tmp_path / "backups").mkdir()
    assert (
        json.loads(banned_pds(env, "backup", str(tmp_path / "backups"), "--keep", "1", "--json"))[
            "removed"
        ]
        == []
    )
    added = json.loads(
        banned_pds(
            env, "clients", "add", "--name", "Node Bank", "--redirect-uri", base + "/cb", "--json"
        )
    )
    with serving(env, port, tmp_path / "serve.log", prefix=WXBAN):
        status, _, body = get(base + "/healthz")
        assert (status, json.loads(body)) == (200, {"status": "ok"})
        assert openid_flow(base, added["client_id"], added["client_secret"]) == flow_ok(base)
    report = json.loads(banned_pds(env, "audit", "verify", "--json"))
    assert (report["ok"], report["problems"]) == (True, [])


def test_pds_service_without_its_drop_in_refuses_to_serve(tmp_path: Path) -> None:
    """The unit names no issuer: started as shipped (its Environment= lines, its ExecStart)
    pds stops before the vault with the error docs/deploy.md shows, and with the drop-in's
    PDS_ISSUER it gets past that check."""
    settings = dict(v.split("=", 1) for k, v in service("pds.service") if k == "Environment")
    assert settings == {
        "PDS_HOME": "/var/lib/pds",
        "PDS_PASSPHRASE_FILE": "%d/passphrase",
        "PDS_PROXY_HOPS": "1",
    }
    home = tmp_path / "var-lib-pds"
    env = {**pds_env(home), **settings, "PDS_HOME": str(home)}
    env["PDS_PASSPHRASE_FILE"] = str(tmp_path / "credentials" / "passphrase")
    start = next(v for k, v in service("pds.service") if k == "ExecStart")
    argv = [sys.executable, "-m", "pds", *start.removeprefix(SHIPPED_BIN + "pds ").split()]
    assert argv[3:] == ["serve", "--host", "127.0.0.1", "--port", "8000"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        "Error: PDS_PROXY_HOPS=1 says pds is behind a reverse proxy, and PDS_ISSUER is not set\n"
        "Hint: Set PDS_ISSUER to the https address clients reach the vault at through the "
        "proxy, e.g. https://vault.example.org (docs/deploy.md), or PDS_PROXY_HOPS=0 when "
        "nothing stands in front of pds.\n"
    )
    assert done.stderr in (ROOT / "docs" / "deploy.md").read_text()
    assert not home.exists()
    # with the drop-in's issuer, the issuer is no longer the problem (here, the vault is)
    env["PDS_ISSUER"] = "https://vault.example.org"
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr == (
        f"Error: no vault at {home}\n"
        "Hint: Create one with `pds init`, or point PDS_HOME at an existing vault.\n"
    )
