"""`pds backup FOLDER --keep N`: dated backups, rotated so the newest N remain."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pds.cli import cli
from pds.errors import BackupError
from pds.settings import Settings
from pds.vault import Vault
from pds.vault import backups as backupmod
from pds.vault.backups import BACKUP_NAME, prune_backups
from tests.conftest import FAST_KDF, PASSPHRASE, fixture

SPEC = "midata/midata-spec-example.csv"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A vault made with the cheap KDF, so that the many CLI runs below stay quick."""
    home = tmp_path / "home"
    Vault.create(Settings(home=home, kdf=FAST_KDF), PASSPHRASE).close()
    return home


@pytest.fixture
def runner(home: Path) -> CliRunner:
    return CliRunner(env={"PDS_HOME": str(home), "PDS_PASSPHRASE": PASSPHRASE})


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The UTC seconds the next dated backups are named after, in order."""
    stamps: list[str] = []
    monkeypatch.setattr(backupmod, "_backup_stamp", lambda: stamps.pop(0))
    return stamps


def run(runner: CliRunner, *args: str):
    return runner.invoke(cli, list(args))


def ok_json(runner: CliRunner, *args: str):
    result = run(runner, *args, "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return json.loads(result.stdout)


def backups(folder: Path) -> list[str]:
    """The dated backup files in ``folder`` (not a folder or symlink of such a name)."""
    return sorted(
        p.name
        for p in folder.iterdir()
        if BACKUP_NAME.fullmatch(p.name) and p.is_file() and not p.is_symlink()
    )


def audit_actions(runner: CliRunner) -> list[str]:
    return [e["action"] for e in ok_json(runner, "audit", "tail", "-n", "10000")]


def unrelated(folder: Path) -> dict[str, bytes | str]:
    """Files beside the backups that rotation must never touch, made in ``folder``."""
    (folder / "notes.txt").write_text("keep me")
    (folder / "pds-backup-old.db").write_text("not a dated name")
    (folder / "pds-backup-2001-01-01T000000Z.db.bak").write_text("another suffix")
    (folder / "pds-backup-2001-01-01T000000Z-0.db").write_text("-0 is never made")
    (folder / "pds-backup-2001-01-01T000000z.db").write_text("lower-case z")
    (folder / "my-pds-backup-2001-01-01T000000Z.db").write_text("a prefix")
    (folder / "pds-backup-2001-01-02T000000Z.db").mkdir()  # a folder with a dated name
    (folder / "pds-backup-2001-01-03T000000Z.db").symlink_to(folder / "notes.txt")
    return snapshot(folder)


def snapshot(folder: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for p in folder.iterdir():
        if p.is_symlink():
            out[p.name] = f"-> {os.readlink(p)}"
        elif p.is_dir():
            out[p.name] = "<dir>"
        elif p.name not in backups(folder):
            out[p.name] = p.read_bytes()
    return out


def stamps(n: int) -> Iterator[str]:
    """``n`` second stamps, each second used twice (two backups in the same second)."""
    for i in range(n):
        yield f"2026-03-01T10{i // 2 // 60:02d}{i // 2 % 60:02d}Z"


# -- rotation -------------------------------------------------------------------------------


def test_first_second_and_twentieth_backup_keep_the_newest_three(
    runner: CliRunner, tmp_path: Path, clock: list[str]
) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    # a backup of pds's own from before (oldest: goes first), and files that are not
    (folder / "pds-backup-2025-12-31T235959Z.db").write_bytes(b"an older pds backup")
    others = unrelated(folder)
    clock.extend(stamps(20))

    first = ok_json(runner, "backup", str(folder), "--keep", "3")
    assert first["backup"] == str(folder / "pds-backup-2026-03-01T100000Z.db")
    assert first["removed"] == []
    assert backups(folder) == [
        "pds-backup-2025-12-31T235959Z.db",
        "pds-backup-2026-03-01T100000Z.db",
    ]

    second = ok_json(runner, "backup", str(folder), "--keep", "3")  # the same second
    assert second["backup"] == str(folder / "pds-backup-2026-03-01T100000Z-2.db")
    assert second["removed"] == []
    assert second["bytes"] == Path(second["backup"]).stat().st_size > 0

    third = ok_json(runner, "backup", str(folder), "--keep", "3")
    assert third["backup"] == str(folder / "pds-backup-2026-03-01T100001Z.db")
    assert third["removed"] == [str(folder / "pds-backup-2025-12-31T235959Z.db")]

    made = [first["backup"], second["backup"], third["backup"]]
    for _ in range(4, 21):
        out = ok_json(runner, "backup", str(folder), "--keep", "3")
        assert out["removed"] == [made[-3]]
        made.append(out["backup"])
        assert sorted(str(folder / n) for n in backups(folder)) == sorted(made[-3:])

    assert made[-1] == str(folder / "pds-backup-2026-03-01T100009Z-2.db")
    assert backups(folder) == [  # sorted by name: "-" sorts before "."
        "pds-backup-2026-03-01T100008Z-2.db",
        "pds-backup-2026-03-01T100009Z-2.db",
        "pds-backup-2026-03-01T100009Z.db",
    ]
    assert snapshot(folder) == others
    assert audit_actions(runner).count("backup") == 20


def test_the_new_backup_stays_when_the_clock_went_back(
    runner: CliRunner, tmp_path: Path, clock: list[str]
) -> None:
    folder = tmp_path / "b"
    folder.mkdir()
    clock.extend(["2026-05-01T120000Z", "2026-05-01T120001Z", "2026-05-01T120002Z"])
    clock.append("2026-04-30T090000Z")  # the clock was set back a day
    for _ in range(3):
        ok_json(runner, "backup", str(folder), "--keep", "2")
    out = ok_json(runner, "backup", str(folder), "--keep", "2")
    assert out["backup"] == str(folder / "pds-backup-2026-04-30T090000Z.db")
    assert out["removed"] == [str(folder / "pds-backup-2026-05-01T120001Z.db")]
    assert backups(folder) == [
        "pds-backup-2026-04-30T090000Z.db",
        "pds-backup-2026-05-01T120002Z.db",
    ]


def test_keep_one_leaves_only_the_new_backup(
    runner: CliRunner, tmp_path: Path, clock: list[str]
) -> None:
    folder = tmp_path / "b"
    folder.mkdir()
    clock.extend(["2026-05-01T120000Z"] * 3 + ["2026-05-01T120001Z"])
    for n in ("", "-2", "-3"):
        out = ok_json(runner, "backup", str(folder), "--keep", "3")
        assert out["backup"] == str(folder / f"pds-backup-2026-05-01T120000Z{n}.db")
    out = ok_json(runner, "backup", str(folder), "--keep", "1")
    assert out["removed"] == [
        str(folder / "pds-backup-2026-05-01T120000Z.db"),
        str(folder / "pds-backup-2026-05-01T120000Z-2.db"),
        str(folder / "pds-backup-2026-05-01T120000Z-3.db"),
    ]
    assert backups(folder) == ["pds-backup-2026-05-01T120001Z.db"]


def test_same_second_numbers_sort_as_numbers(tmp_path: Path, clock: list[str]) -> None:
    settings = Settings(home=tmp_path / "v", kdf=FAST_KDF)
    folder = tmp_path / "b"
    folder.mkdir()
    clock.extend(["2026-06-01T000000Z"] * 12)
    with Vault.create(settings, PASSPHRASE) as v:
        made = [v.backup(folder) for _ in range(11)]
        assert [p.name for p in made] == [
            "pds-backup-2026-06-01T000000Z.db",
            *(f"pds-backup-2026-06-01T000000Z-{n}.db" for n in range(2, 12)),
        ]
        written, removed = v.backup_keeping(str(folder), 3)
    assert written.name == "pds-backup-2026-06-01T000000Z-12.db"
    assert removed == made[:9]  # -10 and -11 are newer than -9 (not "-10" < "-2")
    assert backups(folder) == [
        "pds-backup-2026-06-01T000000Z-10.db",
        "pds-backup-2026-06-01T000000Z-11.db",
        "pds-backup-2026-06-01T000000Z-12.db",
    ]


def test_real_clock_backups_in_one_second_are_all_kept_apart(
    runner: CliRunner, home: Path, tmp_path: Path
) -> None:
    """No clock patched: five backups in a row, some surely in the same second."""
    ok_json(runner, "import", str(fixture(SPEC)))
    folder = tmp_path / "b"
    folder.mkdir()
    made = []
    for i in range(5):
        out = ok_json(runner, "backup", str(folder), "--keep", "2")
        assert out["backup"] not in made
        assert out["removed"] == (made[-2:-1] if i >= 2 else [])
        made.append(out["backup"])
        assert sorted(str(folder / n) for n in backups(folder)) == sorted(made[-2:])
    # the newest one restores to the same records
    other = CliRunner(env={"PDS_HOME": str(tmp_path / "restored"), "PDS_PASSPHRASE": PASSPHRASE})
    assert ok_json(other, "restore", made[-1])["records"] == 6
    assert ok_json(other, "records") == ok_json(runner, "records")


def test_text_output(runner: CliRunner, tmp_path: Path, clock: list[str]) -> None:
    folder = tmp_path / "b"
    folder.mkdir()
    clock.extend(["2026-05-01T120000Z", "2026-05-01T120000Z", "2026-05-01T120001Z"])
    result = run(runner, "backup", str(folder), "--keep", "1")
    size = (folder / "pds-backup-2026-05-01T120000Z.db").stat().st_size
    assert result.exit_code == 0
    assert result.stdout == (
        f"Backed up to {folder / 'pds-backup-2026-05-01T120000Z.db'} ({size:,} bytes, encrypted).\n"
    )
    run(runner, "backup", str(folder) + "/", "--keep", "2")
    result = run(runner, "backup", str(folder), "--keep", "1")
    size = (folder / "pds-backup-2026-05-01T120001Z.db").stat().st_size
    assert result.stdout == (
        f"Backed up to {folder / 'pds-backup-2026-05-01T120001Z.db'} ({size:,} bytes, encrypted).\n"
        "Removed 2 older backups (keeping 1): pds-backup-2026-05-01T120000Z.db, "
        "pds-backup-2026-05-01T120000Z-2.db.\n"
    )


def test_without_keep_nothing_is_removed(runner: CliRunner, tmp_path: Path, clock: list[str]):
    folder = tmp_path / "b"
    folder.mkdir()
    clock.extend(["2026-05-01T120000Z"] * 4)
    for _ in range(4):
        out = ok_json(runner, "backup", str(folder))
        assert set(out) == {"backup", "bytes"}
    assert len(backups(folder)) == 4


def test_prune_counts_only_regular_files_with_the_dated_name(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    folder.mkdir()
    others = unrelated(folder)
    names = [f"pds-backup-2026-01-0{d}T000000Z.db" for d in range(1, 6)]
    for name in names:
        (folder / name).write_bytes(b"x")
    removed = prune_backups(folder, 2, folder / names[-1])
    assert removed == [folder / n for n in names[:3]]
    assert backups(folder) == names[3:]
    assert snapshot(folder) == others
    assert prune_backups(folder, 2, folder / names[-1]) == []
    assert prune_backups(folder, 5, folder / names[-1]) == []
    assert backups(folder) == names[3:]


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("0", "'0'"),
        ("-1", "'-1'"),
        ("three", "'three'"),
        ("2.5", "'2.5'"),
        ("", "''"),
        ("100001", "'100001'"),
        ("9" * 5000, "'999999999999999999999999'\u2026 (5,000 characters)"),
    ],
)
def test_bad_keep_values(runner: CliRunner, tmp_path: Path, value: str, shown: str) -> None:
    folder = tmp_path / "b"
    folder.mkdir()
    before = audit_actions(runner)
    result = run(runner, "backup", str(folder), "--keep", value)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--keep': {shown} is not a whole number from 1 to 100000"
    )
    assert list(folder.iterdir()) == []
    assert audit_actions(runner) == before


def test_keep_needs_a_folder(runner: CliRunner, tmp_path: Path) -> None:
    before = audit_actions(runner)
    file = tmp_path / "b.db"
    file.write_bytes(b"keep me")
    for path in (str(file), f"{file}/"):
        result = run(runner, "backup", path, "--keep", "3")
        assert result.exit_code == 1
        assert result.stderr == (
            f"Error: {file} is not a folder\n"
            "Hint: --keep keeps the newest backups in a folder: give the folder, not a file.\n"
        )
    assert file.read_bytes() == b"keep me"
    missing = tmp_path / "new.db"
    for path in (str(missing), str(tmp_path / "bk" / "mine.DB")):
        result = run(runner, "backup", path, "--keep", "3")
        assert result.exit_code == 1
        assert result.stderr == (
            f"Error: --keep needs a folder to keep backups in; {path} is a file name, "
            "not a folder\n"
            "Hint: Give a folder (mkdir -p it first): pds names each backup in it "
            "pds-backup-<time>.db.\n"
        )
    for gone in (f"{missing}/", str(tmp_path / "backups"), str(tmp_path / "bk" / "daily")):
        result = run(runner, "backup", gone, "--keep", "3")
        assert result.exit_code == 1
        shown = gone.rstrip("/")
        assert result.stderr == (
            f"Error: the folder {shown} does not exist\n"
            f"Hint: Create it first (mkdir -p {shown}); --keep keeps backups in a folder.\n"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.db", "home"]
    assert audit_actions(runner) == before


def test_keep_below_one_refused_by_the_vault(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "v", kdf=FAST_KDF)
    with Vault.create(settings, PASSPHRASE) as v, pytest.raises(BackupError) as err:
        v.backup_keeping(str(tmp_path), 0)
    assert (err.value.message, err.value.hint) == ("cannot keep 0 backups", "Keep at least 1.")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v"]


def test_a_named_file_is_still_never_overwritten(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "v", kdf=FAST_KDF)
    with Vault.create(settings, PASSPHRASE) as v:
        v.backup(tmp_path / "b.db")
        with pytest.raises(BackupError) as err:
            v.backup(tmp_path / "b.db")
    assert err.value.message == f"{tmp_path / 'b.db'} already exists"


def test_a_name_freed_by_keep_is_not_reused(
    runner: CliRunner, tmp_path: Path, clock: list[str]
) -> None:
    """Many backups in one second with --keep 1: each gets a later name than the last."""
    folder = tmp_path / "b"
    folder.mkdir()
    clock.extend(["2026-05-01T120000Z"] * 6)
    names = ["pds-backup-2026-05-01T120000Z.db"] + [
        f"pds-backup-2026-05-01T120000Z-{n}.db" for n in range(2, 7)
    ]
    for i, name in enumerate(names):
        out = ok_json(runner, "backup", str(folder), "--keep", "1")
        assert out["backup"] == str(folder / name)
        assert out["removed"] == ([str(folder / names[i - 1])] if i else [])
        assert backups(folder) == [name]
