"""Upgrading a vault's schema, with a backup of the vault as it was taken first.

Any pds command brings the vault it opens up to date (``pds.db.migrate``): each
schema version is one transaction, and an older pds refuses a vault a newer one migrated
(``SchemaTooNew``). ``pds upgrade`` does the same after reading the stored version on its
own, without migrating, and, if it is older than this pds's, copying the vault as it is into
``$PDS_HOME/backups/`` first (SQLite's online backup, as encrypted as the vault). That copy
is what ``pds restore`` takes back, with the older pds reinstalled, to roll an upgrade back.
No passphrase is needed: neither the copy nor the migrations decrypt anything.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pds import db as dbmod
from pds.audit.log import AuditLog, make_entry
from pds.clock import now_iso
from pds.db.keys import audit_origin
from pds.errors import BackupError, ConfigError
from pds.settings import Settings
from pds.vault import require, search
from pds.vault.backups import copy_database

BACKUP_FOLDER = "backups"
"""The folder in ``PDS_HOME`` that pre-upgrade backups go to."""


@dataclass(frozen=True)
class Upgrade:
    """What ``upgrade`` found and did: the schema before and after, and the backup made."""

    home: Path
    schema_before: int
    schema: int
    backup: Path | None
    reindex: bool = False
    """The search index is to be made (again) at the vault's next unlock (it needs the key)."""

    @property
    def upgraded(self) -> bool:
        return self.schema != self.schema_before

    def as_dict(self) -> dict[str, Any]:
        return {
            "home": str(self.home),
            "schema_before": self.schema_before,
            "schema": self.schema,
            "upgraded": self.upgraded,
            "backup": str(self.backup) if self.backup else None,
        }


def backup_prefix(version: int) -> str:
    """The name a pre-upgrade backup starts with: ``pds-before-upgrade-schema-<version>``."""
    return f"pds-before-upgrade-schema-{version}"


def stored_version(path: Path) -> int:
    """The schema version stored in the database at ``path``, read without migrating it
    (a plain connection: not even its journal mode is set)."""
    try:
        conn = sqlite3.connect(path)
        try:
            return dbmod.schema_version(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        raise ConfigError(
            f"{path} is not a pds vault (not an SQLite database)",
            hint="Point PDS_HOME at the folder that holds your vault.db.",
        ) from None


def upgrade(settings: Settings) -> Upgrade:
    """Bring the vault in ``settings.home`` to ``SCHEMA_VERSION``, backing it up first.

    A current vault is left as it is (no backup); one from a newer pds raises SchemaTooNew
    and is left as it is too. The upgrade is logged (``vault.upgrade``, the two versions and
    the backup's file name) once the migrations have committed.
    """
    require(settings)
    path = settings.db_path
    before = stored_version(path)
    if before == 0:
        raise ConfigError(
            f"{path} is not a pds vault (no pds schema)",
            hint="Point PDS_HOME at the folder that holds your vault.db.",
        )
    dbmod.require_known(before)
    if before == dbmod.SCHEMA_VERSION:
        return Upgrade(settings.home, before, before, None)
    conn = dbmod.open_db(path, up_to_date=False).conn
    try:
        folder = settings.home / BACKUP_FOLDER
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise BackupError(
                f"cannot make the backup folder {folder}: {exc.strerror}; "
                "the vault was not upgraded",
                hint="Make it a folder pds can write to, then run `pds upgrade` again.",
            ) from None
        target = folder / f"{backup_prefix(before)}-{now_iso().replace(':', '')}.db"
        if target.exists():
            raise BackupError(
                f"{target} already exists; the vault was not upgraded",
                hint="Run `pds upgrade` again in a second; pds never overwrites a backup.",
            )
        saved = copy_database(conn, target)
        dbmod.migrate(conn)
        detail = {"from": before, "to": dbmod.SCHEMA_VERSION, "backup": saved.name}
        AuditLog(conn, audit_origin(conn)).record(
            make_entry("vault.upgrade", actor="owner", detail=detail)
        )
        reindex = not search.complete(conn)
        return Upgrade(settings.home, before, dbmod.schema_version(conn), saved, reindex)
    finally:
        conn.close()
