"""Backup files: where a backup goes, its dated name, the copy itself, and ``--keep``.

A backup is a copy made with SQLite's online backup API, as encrypted as the vault. It is
written to a new file, never over one: a folder gets a dated name (:data:`BACKUP_NAME`),
claimed exclusively, so two backups never share a file. ``pds.vault.Vault.backup`` writes
the access-log entry around the copy; ``pds.vault.upgrade`` copies before it migrates;
:func:`put_back` copies a checked backup over the vault for ``pds.vault.restore``.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

from pds import clock
from pds import db as dbmod
from pds.diskfull import reporting_disk_full
from pds.errors import BackupError, VaultLocked
from pds.settings import Settings
from pds.vault.keys import unlock


def claim(target: Path | str) -> Path:
    """Create the new empty file a backup to ``target`` is written to, and return it.

    ``target`` is a file to create, or an existing folder to put a dated file in
    (:data:`BACKUP_NAME`; a second backup in the same second is ``...Z-2.db``). Given as
    text ending in a slash it must be a folder: a missing one is an error, never a file
    of that name. Nothing is ever overwritten.
    """
    as_folder = isinstance(target, str) and target.endswith(("/", os.sep))
    target = Path(target).expanduser()
    if target.is_dir():
        folder, target = target, None
    elif as_folder:
        if target.exists():
            raise BackupError(f"{target} is not a folder", hint="Give a folder or a file name.")
        raise BackupError(
            f"the folder {target} does not exist",
            hint=f"Create it first (mkdir -p {target}), or give a file name for the backup.",
        )
    elif not target.parent.is_dir():
        raise BackupError(
            f"the folder {target.parent} does not exist",
            hint=f"Create it first (mkdir -p {target.parent}), or choose another place.",
        )
    elif target.exists():
        raise BackupError(
            f"{target} already exists", hint="Choose a new file name; pds never overwrites."
        )
    else:
        folder = target.parent
    return _new_backup_file(folder, target)


def keep_folder(folder: str, keep: int) -> Path:
    """The folder ``pds backup --keep`` writes to and prunes: ``folder``, which must be an
    existing folder, and ``keep`` at least 1 (BackupError otherwise)."""
    if keep < 1:
        raise BackupError(f"cannot keep {keep} backups", hint="Keep at least 1.")
    path = Path(folder).expanduser()
    as_folder = folder.endswith(("/", os.sep))
    if not path.exists() and not as_folder and path.suffix.lower() == ".db":
        raise BackupError(
            f"--keep needs a folder to keep backups in; {path} is a file name, not a folder",
            hint="Give a folder (mkdir -p it first): pds names each backup in it "
            "pds-backup-<time>.db.",
        )
    if not path.exists():
        raise BackupError(
            f"the folder {path} does not exist",
            hint=f"Create it first (mkdir -p {path}); --keep keeps backups in a folder.",
        )
    if not path.is_dir():
        raise BackupError(
            f"{path} is not a folder",
            hint="--keep keeps the newest backups in a folder: give the folder, not a file.",
        )
    return path


BACKUP_NAME = re.compile(r"pds-backup-(\d{4}-\d{2}-\d{2}T\d{6}Z)(?:-([1-9][0-9]{0,8}))?\.db")
"""The name of a dated backup: its UTC second, then ``-2``, ``-3`` ... for the second, third
backup made in that same second. Only files named so are counted or removed by ``--keep``."""


def _backup_stamp() -> str:
    """The UTC second a dated backup is named after (``2026-12-07T151705Z``)."""
    return clock.now_iso().replace(":", "")


def _new_backup_file(folder: Path, target: Path | None) -> Path:
    """Create ``target`` (or, for None, a new dated name in ``folder``) as a new empty file of
    mode 0600, exclusively: two backups never share a file.

    A dated name comes after every backup of the same second already there, never in a gap
    an older one left (``--keep`` removed it): the newest backup always has the newest name.
    """
    stamp = _backup_stamp()
    taken = [0]
    if target is None:
        with os.scandir(folder) as entries:
            for entry in entries:
                match = BACKUP_NAME.fullmatch(entry.name)
                if match and match[1] == stamp:
                    taken.append(int(match[2] or 1))
    for n in range(max(taken) + 1, 1_000_000_000):
        path = target or folder / f"pds-backup-{stamp}{f'-{n}' if n > 1 else ''}.db"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            if target is not None:
                raise BackupError(
                    f"{target} already exists",
                    hint="Choose a new file name; pds never overwrites.",
                ) from None
            continue
        except OSError as exc:
            raise BackupError(f"cannot write a backup to {path}: {exc.strerror}") from None
        return path
    raise BackupError(f"too many backups named pds-backup-{stamp}... in {folder}")


def prune_backups(folder: Path, keep: int, written: Path) -> list[Path]:
    """Delete the oldest dated pds backups in ``folder`` so that ``keep`` remain; return them.

    Only regular files named like :data:`BACKUP_NAME` count; any other file (another name,
    a symlink, a folder) is never touched. ``written``, the backup just made, always stays,
    even if a clock set back makes it sort older than the others. Age is the UTC second in
    the name, then the same-second number.
    """
    found = []
    with os.scandir(folder) as entries:
        for entry in entries:
            match = BACKUP_NAME.fullmatch(entry.name)
            if match and entry.name != written.name and entry.is_file(follow_symlinks=False):
                found.append(((match[1], int(match[2] or 1)), Path(entry.path)))
    found.sort()
    removed = []
    for _, path in found[: max(len(found) - (keep - 1), 0)]:
        try:
            path.unlink()
        except FileNotFoundError:
            continue  # another `pds backup --keep` in this folder removed it first
        except OSError as exc:
            raise BackupError(
                f"backed up to {written}, but cannot remove the old backup {path}: {exc.strerror}",
                hint="Check the folder's permissions; the older backups are still there.",
            ) from None
        removed.append(path)
    return removed


def copy_database(
    conn: sqlite3.Connection, target: Path, *, before: Callable[[], None] | None = None
) -> Path:
    """Copy the database of ``conn`` into the new file ``target`` (SQLite's online backup
    API), readable by its owner only; ``before`` runs once the file is open, just before the
    copy. ``target`` may exist already as an empty file (made to claim its name). A failure
    leaves no file behind."""
    try:
        dest = sqlite3.connect(target)
    except sqlite3.Error as exc:
        target.unlink(missing_ok=True)
        raise BackupError(f"cannot write a backup to {target}: {exc}") from None
    try:
        if before is not None:
            before()
        with reporting_disk_full(target.parent, "back up again", "no backup was written"):
            conn.backup(dest)
    except BaseException:
        dest.close()
        target.unlink(missing_ok=True)  # never leave half a backup behind
        raise
    dest.close()
    target.chmod(0o600)
    return target


def put_back(settings: Settings, source: Path, passphrase: str) -> int:
    """Check the backup ``source`` (a pds vault, a known schema, ``passphrase`` opens it) and
    copy it over the vault at ``settings.home`` with SQLite's backup API, which writes the
    destination in one transaction; returns the backup's schema version. The backup file
    itself is left as it was (checked, not migrated)."""
    source = source.expanduser()
    if not source.is_file():
        raise BackupError(f"no backup file at {source}", hint="Give the path of a pds backup.")
    try:
        src = dbmod.connect(source)
        dbmod.check_database(src)
    except sqlite3.DatabaseError:
        raise BackupError(f"{source} is not a pds backup (not an SQLite database)") from None
    try:
        version = dbmod.schema_version(src)
        if version == 0:
            raise BackupError(f"{source} is not a pds backup (no pds schema)")
        # Checked, not migrated: the backup file stays as it was (an older pds can still
        # take it back); the restored vault is migrated when it is opened (``pds.vault.restore``).
        dbmod.require_known(version)
        try:
            unlock(src, passphrase)
        except VaultLocked:
            raise VaultLocked(
                f"the passphrase does not open the backup {source}",
                hint="Use the passphrase the vault had when the backup was made.",
            ) from None
        settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        dest = dbmod.connect(settings.db_path)
        try:
            with reporting_disk_full(settings.home, "restore again", "the vault is as it was"):
                src.backup(dest)
        finally:
            dest.close()
    finally:
        src.close()
    settings.db_path.chmod(0o600)
    return version
