"""Offline verification: a clean log passes; every kind of tampering is named."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from pds.audit import checkpoint as cpmod
from pds.audit import verify as verifymod
from pds.audit.log import AuditLog
from pds.audit.verify import BundleError, BundleSource, verify, write_bundle
from pds.cli import cli
from pds.vault import Vault
from tests.conftest import PASSPHRASE


def fill(vault: Vault, n: int) -> None:
    for i in range(n):
        vault.audit("api.records.read", actor="client:c1", client_id="c1", count=i)


def rewrite(vault: Vault, texts: list[str]) -> None:
    """What an operator holding the signing key could do: rebuild the log and re-sign it."""
    conn = vault.conn
    for table in ("audit_log", "audit_nodes", "audit_checkpoints"):
        conn.execute(f"DELETE FROM {table}")
    log = AuditLog(conn, vault.log.origin, lambda: vault.keyring.signing_key(conn))
    for text in texts:
        log.record(json.loads(text))
    log.checkpoint()


def texts_of(vault: Vault) -> list[str]:
    return [text for _, text, _ in vault.log.entries()]


@pytest.fixture
def logged(vault: Vault) -> Vault:
    vault.log.every = 8
    fill(vault, 20)
    vault.log.checkpoint()
    return vault


def test_clean_log_verifies(logged: Vault) -> None:
    report = verify(logged.log_source())
    assert report.ok
    assert report.size == 21
    assert [cp.size for cp in report.checkpoints] == [1, 9, 17, 21]
    assert report.first_bad_index is None
    assert verifymod.describe(report)[2:] == [
        "Entries:     21",
        "Checkpoints: 4 signed, newest at size 21",
        "OK: every entry hashes to its leaf, every checkpoint is validly signed and matches "
        "the entries.",
    ]


def test_edited_old_entry_is_named_by_index(logged: Vault) -> None:
    logged.conn.execute(
        "UPDATE audit_log SET entry = replace(entry, '\"count\":4', '\"count\":0') WHERE idx = 5"
    )
    report = verify(logged.log_source())
    assert not report.ok
    assert report.first_bad_index == 5
    assert [p.message for p in report.problems] == [
        "entry 5 does not hash to the leaf recorded when it was appended: it was changed "
        "afterwards",
        "the first 9 entries do not match the signed checkpoint of size 9",
        "the first 17 entries do not match the signed checkpoint of size 17",
        "the first 21 entries do not match the signed checkpoint of size 21",
    ]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda t: t[:7] + t[8:], id="delete"),
        pytest.param(lambda t: [*t[:7], t[3], *t[7:]], id="insert"),
        pytest.param(lambda t: [*t[:7], t[8], t[7], *t[9:]], id="reorder"),
    ],
)
def test_rewritten_and_resigned_log_fails_against_a_saved_checkpoint(logged: Vault, change) -> None:
    saved = logged.log.latest_checkpoint().note
    assert verify(logged.log_source(), trusted=[saved]).ok
    rewrite(logged, change(texts_of(logged)))
    # Re-signed, the log is consistent with itself ...
    assert verify(logged.log_source()).ok
    # ... but not with what the auditor saved.
    report = verify(logged.log_source(), trusted=[saved])
    assert not report.ok
    size = logged.log.size()
    if size == 21:
        assert [p.message for p in report.problems] == [
            "fork: two validly signed checkpoints of size 21 have different roots "
            f"(a trusted says {report.trusted[0].root.hex()[:16]}…, "
            f"another says {report.checkpoints[-1].root.hex()[:16]}…)",
            "the first 21 entries do not match the signed trusted checkpoint of size 21 "
            "(an entry was changed, removed, inserted or moved)",
        ]
    elif size == 20:
        assert [p.message for p in report.problems] == [
            "a trusted checkpoint covers 21 entries but the log has only 20: entries were removed"
        ]
    else:
        assert [p.message for p in report.problems] == [
            "the first 21 entries do not match the signed trusted checkpoint of size 21 "
            "(an entry was changed, removed, inserted or moved)"
        ]


def test_two_checkpoints_of_one_size_are_a_fork(logged: Vault) -> None:
    first = logged.log.latest_checkpoint()
    rewrite(logged, [t.replace('"count":2', '"count":9') for t in texts_of(logged)])
    second = logged.log.latest_checkpoint()
    assert first.size == second.size == 21
    report = verify(logged.log_source(), trusted=[first.note])
    assert report.problems[0].message == (
        "fork: two validly signed checkpoints of size 21 have different roots "
        f"(a trusted says {first.root.hex()[:16]}…, another says {second.root.hex()[:16]}…)"
    )


def test_checkpoint_signed_by_another_key_or_bent_is_refused(logged: Vault) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other = Ed25519PrivateKey.generate()
    origin = logged.log.origin
    forged = cpmod.sign_checkpoint(cpmod.Checkpoint(origin, 3, b"\x00" * 32), origin, other)
    report = verify(logged.log_source(), trusted=[forged])
    assert [p.message for p in report.problems] == [
        f"trusted checkpoint 1 does not verify: checkpoint is not signed by {origin}"
    ]
    pinned = cpmod.verifier_key(origin, other.public_key())
    report = verify(logged.log_source(), key=pinned)
    assert report.problems[0].message == (
        f"a checkpoint of the log does not verify: checkpoint is not signed by {origin}"
    )
    assert len(report.problems) == 4


def test_deleted_newest_entries_are_caught_by_the_log_checkpoint(logged: Vault) -> None:
    logged.conn.execute("DELETE FROM audit_log WHERE idx >= 18")
    report = verify(logged.log_source())
    assert [p.message for p in report.problems] == [
        "a checkpoint covers 21 entries but the log has only 18: entries were removed"
    ]
    assert report.first_bad_index == 18


def test_gap_in_indexes_is_named(logged: Vault) -> None:
    logged.conn.execute("DELETE FROM audit_log WHERE idx = 4")
    report = verify(logged.log_source())
    assert report.problems[0].message == "entry 4 is missing (the next entry is 5)"
    assert report.first_bad_index == 4


def test_bundle_round_trip_and_tampered_bundle(logged: Vault, tmp_path: Path) -> None:
    path = tmp_path / "log.bundle"
    with path.open("wb") as out:
        assert write_bundle(out, logged.log_source()) == 21
    source = BundleSource(path)
    assert source.origin == logged.log.origin
    assert verify(source).ok
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b'"count":1', b'"count":7')
    path.write_bytes(b"\n".join(lines))
    report = verify(BundleSource(path))
    assert report.first_bad_index == 2
    assert report.problems[0].message == (
        "entry 2 does not hash to the leaf recorded when it was appended: it was changed afterwards"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"hello\n", "{path} is not a pds audit bundle (no JSON header line)"),
        (b'{"format": "x"}\n', "{path} is not a pds audit bundle (pds-audit-bundle/1)"),
        (
            b'{"format": "pds-audit-bundle/1", "origin": "o"}\n',
            "the header of {path} lacks origin, verifier_key or checkpoints",
        ),
    ],
)
def test_bad_bundles_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "b"
    path.write_bytes(content)
    with pytest.raises(BundleError) as exc:
        BundleSource(path)
    assert exc.value.message == message.format(path=path)


def test_bundle_with_a_broken_line(logged: Vault, tmp_path: Path) -> None:
    path = tmp_path / "log.bundle"
    with path.open("wb") as out:
        write_bundle(out, logged.log_source())
    lines = path.read_bytes().split(b"\n")
    lines[2] = b"zz" + lines[2][2:]
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(BundleError) as exc:
        verify(BundleSource(path))
    assert exc.value.message == f"line 3 of {path} does not start with a leaf hash"


# -- the CLI ----------------------------------------------------------------------------------


def run(runner: CliRunner, *args: str):
    return runner.invoke(cli, list(args))


def test_cli_verify_export_and_saved_checkpoint(
    runner: CliRunner, initialised: Path, tmp_path: Path
) -> None:
    saved = tmp_path / "cp.txt"
    result = run(runner, "audit", "verify", "--save-checkpoint", str(saved))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[2:] == [
        "Entries:     1",
        "Checkpoints: 1 signed, newest at size 1",
        "OK: every entry hashes to its leaf, every checkpoint is validly signed and matches "
        "the entries.",
    ]
    origin = lines[0].removeprefix("Log:         ")
    assert saved.read_text().splitlines()[:2] == [origin, "1"]
    key = run(runner, "audit", "key").stdout.strip()
    assert lines[1] == f"Key:         {key} (taken from the log itself; pin it with --key)"
    bundle = tmp_path / "log.bundle"
    result = run(runner, "audit", "export", str(bundle))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Wrote 2 log entries and their signed checkpoints to {bundle}.\n"
    result = run(
        runner,
        "audit",
        "verify",
        "--bundle",
        str(bundle),
        "--key",
        key,
        "--trusted-checkpoint",
        str(saved),
        "--json",
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert {k: doc[k] for k in ("ok", "entries", "key_pinned", "trusted_checkpoints")} == {
        "ok": True,
        "entries": 2,
        "key_pinned": True,
        "trusted_checkpoints": [1],
    }
    assert run(runner, "audit", "export", str(bundle)).stderr == (
        f"Error: {bundle} already exists\nHint: Choose a new file name; pds never overwrites.\n"
    )


def test_cli_verify_tampered_vault_exits_1(runner: CliRunner, initialised: Path) -> None:
    conn = sqlite3.connect(initialised / "vault.db")
    conn.execute("UPDATE audit_log SET entry = replace(entry, 'owner', 'someone') WHERE idx = 0")
    conn.commit()
    conn.close()
    result = run(runner, "audit", "verify")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-2:] == [
        "FAILED: entry 0 does not hash to the leaf recorded when it was appended: it was "
        "changed afterwards",
        "FAILED: the first 1 entry does not match the signed checkpoint of size 1",
    ]
    assert (
        result.stderr == "Error: the access log did not verify (2 problems; first bad entry: 0)\n"
    )


def test_cli_tail_summary_checkpoint(runner: CliRunner, initialised: Path) -> None:
    assert run(runner, "records").exit_code == 0
    tail = json.loads(run(runner, "audit", "tail", "--json").stdout)
    assert [(e["index"], e["action"], e["actor"]) for e in tail] == [
        (0, "vault.init", "owner"),
        (1, "export", "owner"),
    ]
    assert tail[1]["count"] == 0
    text = run(runner, "audit", "tail", "-n", "1").stdout
    assert text.startswith("      1  ")
    assert text.rstrip().endswith("export             allowed  count=0")
    summary = json.loads(run(runner, "audit", "summary", "--json").stdout)
    assert [(r["action"], r["entries"], r["records"]) for r in summary] == [
        ("export", 1, 0),
        ("vault.init", 1, 0),
    ]
    result = run(runner, "audit", "checkpoint")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[1:2] == ["2"]
    assert "\n\n\u2014 " in result.stdout
    assert run(
        runner, "audit", "summary", "--since", "2000-01-01", "--until", "2000-01-02"
    ).stdout == ("No access in that period.\n")


def test_cli_verify_needs_one_source(runner: CliRunner, initialised: Path, tmp_path: Path) -> None:
    result = run(runner, "audit", "verify", "--bundle", "x", "--url", "http://127.0.0.1:1")
    assert result.exit_code == 1
    assert result.stderr == "Error: give either --bundle or --url, not both\n"
    result = run(runner, "audit", "verify", "--bundle", str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: cannot read the bundle {tmp_path / 'nope'}: No such file or directory\n"
        "Hint: Export a new bundle with `pds audit export FILE`.\n"
    )


def test_cli_verify_url_without_token(runner: CliRunner, initialised: Path) -> None:
    result = runner.invoke(
        cli, ["audit", "verify", "--url", "http://127.0.0.1:1"], env={"PDS_AUDIT_TOKEN": ""}
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: no auditor token\n"
        "Hint: Put the access token in a file and pass --token-file, or set PDS_AUDIT_TOKEN.\n"
    )


def test_vault_passphrase_needed_for_vault_verify(runner: CliRunner, initialised: Path) -> None:
    result = runner.invoke(cli, ["audit", "verify"], env={"PDS_PASSPHRASE": PASSPHRASE + "x"})
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: the passphrase is wrong")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (
            lambda b: b.replace(b"\n", b"\r\n"),
            "checkpoint has CRLF line endings; lines must end with LF only",
        ),
        (
            lambda b: b"\xef\xbb\xbf" + b,
            "checkpoint starts with a byte-order mark (U+FEFF); it must be the bytes as saved",
        ),
        (lambda b: b + b" ", "checkpoint does not end with a newline"),
        (lambda b: b.replace(b"\n", b" \n", 1), "checkpoint signature by {origin} is not valid"),
        (
            lambda b: b[:-1] + b" \n",
            "checkpoint signature line 1 is malformed; expected "
            '"\u2014 <key name> <base64 signature>"',
        ),
        (
            lambda b: b.replace(b"\n", b"\r", 1),
            "checkpoint contains control character U+000D; only LF is allowed",
        ),
    ],
)
def test_cli_trusted_checkpoint_is_checked_byte_for_byte(
    runner: CliRunner, initialised: Path, tmp_path: Path, change, why: str
) -> None:
    saved = tmp_path / "cp.txt"
    assert run(runner, "audit", "verify", "--save-checkpoint", str(saved)).exit_code == 0
    exact = saved.read_bytes()
    origin = exact.split(b"\n")[0].decode()
    changed = tmp_path / "changed.txt"
    changed.write_bytes(change(exact))
    assert changed.read_bytes() != exact
    for _ in range(2):  # the same file twice, and beside the exact copy
        result = run(runner, "audit", "verify", "--trusted-checkpoint", str(changed))
        assert result.exit_code == 1
        assert result.stdout.splitlines()[-1] == (
            "FAILED: trusted checkpoint 1 does not verify: " + why.format(origin=origin)
        )
        assert result.stderr == "Error: the access log did not verify (1 problem)\n"
    both = run(
        runner,
        "audit",
        "verify",
        "--trusted-checkpoint",
        str(saved),
        "--trusted-checkpoint",
        str(changed),
    )
    assert both.exit_code == 1
    assert both.stdout.splitlines()[-1] == (
        "FAILED: trusted checkpoint 2 does not verify: " + why.format(origin=origin)
    )
    exact_again = run(runner, "audit", "verify", "--trusted-checkpoint", str(saved))
    assert exact_again.exit_code == 0, exact_again.output


# -- a bundle must end with a signed checkpoint ---------------------------------------------

NEW_BUNDLE = "ask the vault's owner for a new bundle (`pds audit export`)"


def entry_line(text: bytes) -> bytes:
    """A bundle line for ``text`` with its correct leaf hash: what anyone can write."""
    import hashlib

    return hashlib.sha256(b"\x00" + text).hexdigest().encode() + b" " + text + b"\n"


def with_checkpoints(path: Path, checkpoints: list[str], extra: bytes = b"") -> None:
    lines = path.read_bytes().split(b"\n", 1)
    header = json.loads(lines[0])
    header["checkpoints"] = checkpoints
    path.write_bytes(json.dumps(header).encode() + b"\n" + lines[1] + extra)


def test_write_bundle_stops_at_the_newest_checkpoint(logged: Vault, tmp_path: Path) -> None:
    fill(logged, 3)  # logged after the newest checkpoint (size 21): not in the bundle
    assert logged.log.size() == 24
    path = tmp_path / "log.bundle"
    with path.open("wb") as out:
        assert write_bundle(out, logged.log_source()) == 21
    report = verify(BundleSource(path), require_signed_end=True)
    assert (report.ok, report.size, report.newest_size) == (True, 21, 21)


def test_a_live_log_may_have_an_unsigned_tail_and_says_so(logged: Vault) -> None:
    fill(logged, 3)
    report = verify(logged.log_source())
    assert report.ok
    assert verifymod.describe(report)[-1] == (
        "Note: entries 21..23 were logged after the newest signed checkpoint, so no signature "
        "covers them yet (normal for a running vault, which signs one within 1000 entries or "
        "5 minutes); a bundle must not have such entries."
    )


def test_a_bundle_older_than_a_trusted_checkpoint(logged: Vault, tmp_path: Path) -> None:
    path = tmp_path / "log.bundle"
    with path.open("wb") as out:
        write_bundle(out, logged.log_source())
    fill(logged, 2)
    newer = logged.log.checkpoint().note
    report = verify(BundleSource(path), trusted=[newer], require_signed_end=True)
    assert [p.message for p in report.problems] == [
        "a trusted checkpoint covers 23 entries but the log has only 21: entries were "
        "removed, or this bundle is older than your checkpoint"
    ]


def test_an_empty_bundle_without_a_checkpoint_fails(logged: Vault, tmp_path: Path) -> None:
    path = tmp_path / "log.bundle"
    with path.open("wb") as out:
        write_bundle(out, logged.log_source())
    path.write_bytes(path.read_bytes().split(b"\n", 1)[0] + b"\n")
    with_checkpoints(path, [])
    report = verify(BundleSource(path), require_signed_end=True)
    assert [p.message for p in report.problems] == [
        "the bundle holds no checkpoint signed by the key: nothing in it can be verified; "
        + NEW_BUNDLE
    ]


def exported(runner: CliRunner, tmp_path: Path) -> tuple[Path, str]:
    bundle = tmp_path / "log.bundle"
    assert run(runner, "audit", "export", str(bundle)).exit_code == 0
    return bundle, run(runner, "audit", "key").stdout.strip()


def test_cli_a_genuine_bundle_verifies(
    runner: CliRunner, initialised: Path, tmp_path: Path
) -> None:
    bundle, key = exported(runner, tmp_path)
    header, *entries = bundle.read_bytes().splitlines()
    newest = max(int(cp.split("\n")[1]) for cp in json.loads(header)["checkpoints"])
    assert newest == len(entries) == 2
    result = run(runner, "audit", "verify", "--bundle", str(bundle), "--key", key)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[2:] == [
        "Entries:     2",
        "Checkpoints: 2 signed, newest at size 2",
        "OK: every entry hashes to its leaf, every checkpoint is validly signed and matches "
        "the entries.",
    ]


def test_cli_a_bundle_without_checkpoints_fails(
    runner: CliRunner, initialised: Path, tmp_path: Path
) -> None:
    bundle, key = exported(runner, tmp_path)
    with_checkpoints(bundle, [])
    result = run(runner, "audit", "verify", "--bundle", str(bundle), "--key", key)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[3:] == [
        "Checkpoints: 0 signed",
        "FAILED: entries 0..1 are not covered by any signed checkpoint: anyone with the file "
        "could have added them; " + NEW_BUNDLE,
    ]
    assert result.stderr == "Error: the access log did not verify (1 problem; first bad entry: 0)\n"
    # a made-up log of one entry, its leaf correct
    made_up = tmp_path / "made-up.bundle"
    made_up.write_bytes(bundle.read_bytes().split(b"\n", 1)[0] + b"\n")
    made_up.write_bytes(made_up.read_bytes() + entry_line(b'{"action":"nothing to see"}'))
    result = run(runner, "audit", "verify", "--bundle", str(made_up), "--key", key)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1] == (
        "FAILED: entry 0 is not covered by any signed checkpoint: anyone with the file could "
        "have added it; " + NEW_BUNDLE
    )


def test_cli_a_forged_tail_after_a_real_checkpoint_fails(
    runner: CliRunner, initialised: Path, tmp_path: Path
) -> None:
    bundle, key = exported(runner, tmp_path)
    with bundle.open("ab") as out:
        out.write(entry_line(b'{"action":"grant.revoke","actor":"owner"}'))
        out.write(entry_line(b'{"action":"vault.init","actor":"owner"}'))
    result = run(runner, "audit", "verify", "--bundle", str(bundle), "--key", key)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[2:] == [
        "Entries:     4",
        "Checkpoints: 2 signed, newest at size 2",
        "FAILED: entries 2..3 are not covered by any signed checkpoint: anyone with the file "
        "could have added them; " + NEW_BUNDLE,
    ]
    assert result.stderr == "Error: the access log did not verify (1 problem; first bad entry: 2)\n"
