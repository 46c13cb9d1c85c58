"""The vault: the only code that opens vault.db or sees a key. Everything else asks it."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from pds import clock
from pds import db as dbmod
from pds.audit.checkpoint import verifier_key
from pds.audit.log import AuditLog, make_entry
from pds.audit.verify import VaultSource
from pds.db import locking
from pds.diskfull import reporting_disk_full
from pds.errors import (
    BackupError,
    ConfigError,
    IdempotencyKeyReused,
    NotFound,
    VaultBusy,
    VaultExists,
    VaultLocked,
    VaultNotFound,
)
from pds.settings import Settings
from pds.vault import keys
from pds.vault import records as recmod
from pds.vault.records import StoredRecord


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated record ready to seal: canonical payload bytes and its dedup inputs."""

    category: str
    occurred_at: str
    plain: bytes
    identity: str | None
    nth: int


@dataclass(frozen=True)
class SourceInfo:
    connector: str
    filename: str
    digest: bytes


@dataclass(frozen=True)
class IngestResult:
    source_id: int | None
    new: int
    duplicate: int


class Vault:
    """An open, unlocked vault on one long-lived connection."""

    def __init__(self, settings: Settings, db: sqlite_utils.Database, keyring: keys.Keyring):
        self.settings = settings
        self.db = db
        self.keyring = keyring
        conn = db.conn
        self.log = AuditLog(conn, audit_origin(conn), lambda: keyring.signing_key(conn))

    def audit(self, action: str, **fields: Any) -> int:
        """Append one access-log entry (``pds.audit.log.make_entry`` fields); return its index.

        Joins the caller's open transaction (a write and its entry commit together), or
        commits a short one of its own before returning.
        """
        return self.log.record(make_entry(action, **fields))

    def log_verifier_key(self) -> str:
        """The access log's public key as a note verifier key ``<origin>+<id>+<key>``."""
        public = self.keyring.signing_key(self.conn).public_key()
        return verifier_key(self.log.origin, public)

    def log_source(self) -> VaultSource:
        """The access log as a source for ``pds.audit.verify.verify``."""
        return VaultSource(self.log, self.log.origin, self.log_verifier_key())

    def derived_secret(self, purpose: str, salt: bytes) -> bytes:
        """A 256-bit secret from the master key, ``purpose`` and a stored random ``salt``
        (e.g. a webhook's HMAC key): only the salt is kept, never the secret."""
        return keys._hkdf(self.keyring.master, f"pds/derived/{purpose}/v1".encode(), salt)

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    # -- life cycle -------------------------------------------------------------------------

    @classmethod
    def create(cls, settings: Settings, passphrase: str) -> Vault:
        """A new, empty vault in ``settings.home``, protected by ``passphrase``."""
        if not passphrase:
            raise ConfigError("the passphrase is empty", hint="Choose a passphrase to protect it.")
        if settings.db_path.exists():
            raise VaultExists(
                f"a vault already exists at {settings.home}",
                hint="Use it as it is, or choose another PDS_HOME.",
            )
        db = dbmod.open_db(settings.db_path, create=True)
        try:
            with dbmod.transaction(db.conn):
                keyring = keys.create_keys(db.conn, passphrase, settings.kdf)
                vault = cls(settings, db, keyring)
                vault.audit("vault.init", actor="owner")
                vault.log.checkpoint()
        except BaseException:
            db.conn.close()
            settings.db_path.unlink(missing_ok=True)
            raise
        settings.db_path.chmod(0o600)
        return vault

    @classmethod
    def open(cls, settings: Settings, passphrase: str) -> Vault:
        """Open and unlock the vault; VaultLocked if the passphrase does not unwrap its key."""
        db = dbmod.open_db(settings.db_path)
        try:
            keyring = keys.unlock(db.conn, passphrase)
        except VaultLocked:
            try:
                # No key, so no signature: the next checkpoint the vault signs covers it.
                AuditLog(db.conn, audit_origin(db.conn)).record(
                    make_entry("unlock.failed", actor="owner", decision="refused")
                )
            except sqlite3.Error:
                pass  # a read-only or busy vault: the refusal itself still stands
            finally:
                db.conn.close()
            raise
        except BaseException:
            db.conn.close()
            raise
        return cls(settings, db, keyring)

    @classmethod
    def with_keyring(cls, settings: Settings, keyring: keys.Keyring) -> Vault:
        """A new connection to an already unlocked vault (one per server worker process)."""
        return cls(settings, dbmod.open_db(settings.db_path), keys.Keyring(keyring.master))

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------------

    def ingest(self, source: SourceInfo, items: Iterable[list[Prepared]]) -> IngestResult:
        """Store batches of prepared records from one file, all or nothing.

        One transaction covers the whole file: a crash (even SIGKILL) leaves none of it, and
        running the import again completes it. Records already present (same dedup key)
        are counted, not stored again.
        """
        conn = self.conn
        new = total = 0
        with dbmod.transaction(conn):
            source_id = conn.execute(
                "INSERT INTO sources (connector, filename, digest, imported_at) "
                "VALUES (?, ?, ?, ?) RETURNING id",
                (source.connector, source.filename, source.digest, clock.now_iso()),
            ).fetchone()[0]
            next_id = recmod.next_id(conn)
            dkey = self.keyring.dedup_key
            created = clock.now_iso()
            keys: dict[str, tuple] = {}  # checked against the stored key once per category
            for batch in items:
                rows = []
                for item in batch:
                    found = keys.get(item.category)
                    if found is None:
                        found = keys[item.category] = self.keyring.category_aead(
                            conn, item.category, check=True
                        )
                    version, aead = found
                    key = recmod.dedup_key(dkey, item.category, item.identity, item.plain, item.nth)
                    nonce, ct = recmod.seal(aead, next_id, item.category, version, item.plain)
                    rows.append(
                        (
                            next_id,
                            item.category,
                            source_id,
                            item.occurred_at,
                            key,
                            version,
                            nonce,
                            ct,
                            created,
                        )
                    )
                    next_id += 1
                new += recmod.insert_rows(conn, rows)
                total += len(rows)
            if new:
                conn.execute(
                    "UPDATE sources SET new = ?, duplicate = ? WHERE id = ?",
                    (new, total - new, source_id),
                )
            else:
                conn.execute("DELETE FROM sources WHERE id = ?", (source_id,))
                source_id = None
            self.audit(
                "import",
                actor="owner",
                count=new,
                detail={"connector": source.connector, "duplicate": total - new},
            )
        return IngestResult(source_id, new, total - new)

    def change_passphrase(self, new_passphrase: str) -> None:
        if not new_passphrase:
            raise ConfigError("the new passphrase is empty", hint="Choose a non-empty one.")
        with dbmod.transaction(self.conn):
            keys.change_passphrase(self.conn, self.keyring, new_passphrase, self.settings.kdf)
            self.audit("passphrase.change", actor="owner")

    def add_record(
        self,
        category: str,
        occurred_at: str,
        payload: dict[str, Any],
        *,
        source: str,
        idempotency_key: str | None = None,
    ) -> tuple[int, bool]:
        """Store one validated record handed in through the API; returns (id, created).

        Runs in the caller's write transaction (so its audit entry commits with it). The
        record's source is one ``sources`` row per ``source`` (e.g. ``client:<id>``), with
        connector ``api``. Records are told apart per source (``records.write_key``):

        - without ``idempotency_key``, by category, ``occurred_at`` and payload: the same
          record again is not stored again (its id comes back, created False), a different
          one is a new record;
        - with one, by that key alone: the key's first record comes back for the same
          category, ``occurred_at`` and payload (created False), and
          :class:`~pds.errors.IdempotencyKeyReused` is raised, storing nothing, for another.
        """
        conn = self.conn
        plain = recmod.canonical(payload)
        # The source is part of the key: a client re-sending its own record gets it back,
        # but can never learn by writing that someone else holds the same payload.
        key = recmod.write_key(
            self.keyring.dedup_key, category, source, occurred_at, plain, idempotency_key
        )
        found = conn.execute(
            f"SELECT {recmod.COLUMNS} FROM records WHERE dedup_key = ?",  # noqa: S608
            (key,),
        ).fetchone()
        if found is not None:
            if idempotency_key is not None and (found[1], found[3], self._plain(found)) != (
                category,
                occurred_at,
                plain,
            ):
                raise IdempotencyKeyReused(idempotency_key)
            return found[0], False
        created = clock.now_iso()
        row = conn.execute(
            "SELECT id FROM sources WHERE connector = 'api' AND filename = ?", (source,)
        ).fetchone()
        if row is None:
            digest = self.keyring.source_digest()
            digest.update(source.encode())
            row = conn.execute(
                "INSERT INTO sources (connector, filename, digest, imported_at) "
                "VALUES ('api', ?, ?, ?) RETURNING id",
                (source, digest.digest(), created),
            ).fetchone()
        source_id = row[0]
        rid = recmod.next_id(conn)
        version, aead = self.keyring.category_aead(conn, category, check=True)
        nonce, ct = recmod.seal(aead, rid, category, version, plain)
        recmod.insert_rows(
            conn, [(rid, category, source_id, occurred_at, key, version, nonce, ct, created)]
        )
        conn.execute("UPDATE sources SET new = new + 1 WHERE id = ?", (source_id,))
        return rid, True

    def forget_category(
        self, category: str, cleanup: Callable[[sqlite3.Connection], None] | None = None
    ) -> dict[str, Any]:
        """Crypto-shred a category: destroy its key, delete its records, log that it happened.

        One transaction sets the key's salt to NULL (version kept: the category's next record
        gets a new key), deletes its records and the sources left with none, runs ``cleanup``
        (derived rows) and writes ``category.forget`` (category and count only). The delete
        runs with ``secure_delete`` (freed space zeroed); a WAL checkpoint afterwards leaves
        no old page in ``vault.db-wal``. Returns the count, the destroyed key version and
        whether the checkpoint completed (not while another connection is reading).
        """
        conn = self.conn
        was = conn.execute("PRAGMA secure_delete").fetchone()[0]
        conn.execute("PRAGMA secure_delete=ON")
        try:
            with dbmod.transaction(conn):
                sql = "SELECT DISTINCT source_id FROM records WHERE category = ?"
                sources = [r[0] for r in conn.execute(sql, (category,))]
                count = conn.execute("DELETE FROM records WHERE category = ?", (category,)).rowcount
                conn.executemany(
                    "DELETE FROM sources WHERE id = ?1 AND NOT EXISTS "
                    "(SELECT 1 FROM records WHERE source_id = ?1)",
                    [(s,) for s in sources],
                )
                key = conn.execute(
                    "UPDATE category_keys SET salt = NULL, destroyed_at = ? "
                    "WHERE category = ? AND salt IS NOT NULL RETURNING version",
                    (clock.now_iso(), category),
                ).fetchone()
                if not count and key is None:
                    raise NotFound(
                        f'the vault holds nothing in "{category}"; nothing was forgotten'
                    )
                if cleanup is not None:
                    cleanup(conn)
                self.audit("category.forget", actor="owner", category=category, count=count)
        finally:
            conn.execute(f"PRAGMA secure_delete={int(was)}")
            self.keyring.forget_cached()
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        return {"records": count, "key_version": key and key[0], "checkpointed": not busy}

    # -- reading ----------------------------------------------------------------------------

    def _plain(self, row: tuple) -> bytes:
        """The row's payload, decrypted: its canonical JSON bytes."""
        rid, category, _, _, version, nonce, ct = row
        cur_version, aead = self.keyring.category_aead(self.conn, category)
        if version != cur_version:
            raise recmod.SealError(f"record {rid} is sealed under a key that no longer exists")
        return recmod.open_sealed(aead, rid, category, version, nonce, ct)

    def _open_row(self, row: tuple) -> StoredRecord:
        rid, category, source_id, occurred_at = row[:4]
        payload = json.loads(self._plain(row).decode("utf-8"))
        return StoredRecord(rid, category, source_id, occurred_at, payload)

    def records(
        self,
        category: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> Iterator[StoredRecord]:
        """Matching records in time order, decrypted one page at a time."""
        for row in recmod.iter_pages(self.conn, category=category, since=since, until=until):
            yield self._open_row(row)

    def page(
        self,
        category: str,
        *,
        since: str | None = None,
        until: str | None = None,
        after: tuple[str, int] | None = None,
        limit: int = recmod.PAGE,
    ) -> list[StoredRecord]:
        """One page of one category after a keyset cursor (occurred_at, id)."""
        rows = recmod.query_rows(
            self.conn, category=category, since=since, until=until, after=after, limit=limit
        )
        return [self._open_row(r) for r in rows]

    def page_plain(self, category: str, **where: Any) -> list[tuple[int, str, bytes]]:
        """:meth:`page` (same arguments) as (id, occurred_at, canonical payload JSON bytes),
        not parsed: for a reader that passes whole payloads on unchanged (the API, when
        nothing is cut)."""
        rows = recmod.query_rows(self.conn, category=category, **where)
        return [(r[0], r[3], self._plain(r)) for r in rows]

    def get(self, record_id: int) -> StoredRecord:
        return self._open_row(recmod.row_by_id(self.conn, record_id))

    def status(self) -> dict[str, Any]:
        conn = self.conn
        by_cat = dict(
            conn.execute("SELECT category, count(*) FROM records GROUP BY category ORDER BY 1")
        )
        params = keys.kdf_params(conn)
        return {
            "home": str(self.settings.home),
            "schema_version": dbmod.schema_version(conn),
            "created_at": keys._meta(conn, "created_at"),
            "records": sum(by_cat.values()),
            "categories": by_cat,
            "sources": conn.execute("SELECT count(*) FROM sources").fetchone()[0],
            "kdf": {
                "algorithm": "argon2id",
                "memory_kib": params.memory_kib,
                "iterations": params.iterations,
                "lanes": params.lanes,
            }
            if params
            else None,
            "size_bytes": self.settings.db_path.stat().st_size,
        }

    def sources(self) -> list[dict[str, Any]]:
        cur = self.conn.execute(
            "SELECT id, connector, filename, imported_at, new, duplicate FROM sources ORDER BY id"
        )
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur]

    # -- backup -----------------------------------------------------------------------------

    def backup(self, target: Path | str) -> Path:
        """Copy the vault with SQLite's online backup API: as encrypted as the vault itself.

        ``target`` is a file to create, or an existing folder to put a dated file in
        (:data:`BACKUP_NAME`; a second backup in the same second is ``...Z-2.db``). Given as
        text ending in a slash it must be a folder: a missing one is an error, never a file
        of that name. Nothing is ever overwritten.

        The ``backup`` access-log entry is written first, so the copy holds it. A vault
        held by a long write (an import holds its write transaction from start to end) is
        still read: it is copied as it was before that write, and the entry is written once
        the write ends (:data:`BACKUP_LOG_WAIT`; past it the copy is deleted and
        ``VaultBusy`` raised: no backup goes unlogged).
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
        target = _new_backup_file(folder, target)
        logged = False

        def log(seconds: float) -> None:
            with (
                reporting_disk_full(self.settings.home, "back up again", "no backup was made"),
                locking.waiting(self.conn, seconds),
            ):
                self.audit("backup", actor="owner")

        def log_first() -> None:  # the backup then holds its own entry
            nonlocal logged
            try:
                log(BACKUP_FIRST_WAIT)
            except VaultBusy:
                return  # a long write (an import) holds the vault: copy first, log after
            logged = True

        written = copy_database(self.conn, target, before=log_first)
        if not logged:
            try:
                log(BACKUP_LOG_WAIT)
            except BaseException as exc:
                written.unlink(missing_ok=True)  # no backup without its entry in the log
                if isinstance(exc, VaultBusy):
                    raise VaultBusy(f"{VaultBusy.MESSAGE}; no backup was made") from None
                raise
        return written

    def backup_keeping(self, folder: str, keep: int) -> tuple[Path, list[Path]]:
        """:meth:`backup` into ``folder``, then delete the oldest dated backups there so that
        ``keep`` remain, the new one always among them (:func:`prune_backups`).

        Returns the new backup and the files removed, oldest first. ``folder`` must be an
        existing folder; nothing is written or removed otherwise.
        """
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
        written = self.backup(path)
        return written, prune_backups(path, keep, written)


BACKUP_FIRST_WAIT = 2.0
"""Seconds a backup waits to write its access-log entry before the copy (so the copy
holds it); a vault held longer (an import) is copied first, its entry written after."""
BACKUP_LOG_WAIT = 900.0
"""Seconds a backup copied during a long write (an import) waits for it to end to write
its access-log entry; past that the copy is deleted (``VaultBusy``)."""

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


def restore(settings: Settings, source: Path, passphrase: str) -> dict[str, Any]:
    """Replace the vault at ``settings.home`` with a backup that ``passphrase`` unlocks.

    The backup is checked first (a pds vault, a known schema, the passphrase opens it); the
    copy into place uses SQLite's backup API, which writes the destination in one
    transaction. Returns the restored vault's status, with ``schema_before``: the backup's
    schema version (older than ``schema_version`` when opening the restored vault migrated
    it; the backup file itself is left as it was).
    """
    source = source.expanduser()
    if not source.is_file():
        raise BackupError(f"no backup file at {source}", hint="Give the path of a pds backup.")
    try:
        src = dbmod.connect(source)
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError:
        raise BackupError(f"{source} is not a pds backup (not an SQLite database)") from None
    try:
        version = dbmod.schema_version(src)
        if version == 0:
            raise BackupError(f"{source} is not a pds backup (no pds schema)")
        # Checked, not migrated: the backup file stays as it was (an older pds can still
        # take it back); the restored vault is migrated when it is opened below.
        dbmod.require_known(version)
        try:
            keys.unlock(src, passphrase)
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
    with Vault.open(settings, passphrase) as vault:
        vault.audit("restore", actor="owner")
        return {**vault.status(), "schema_before": version}


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


def audit_origin(conn: sqlite3.Connection) -> str:
    """The log's origin line (and signed-note key name), made at schema 2."""
    return conn.execute("SELECT value FROM meta WHERE key = 'audit_origin'").fetchone()[0]


def exists(settings: Settings) -> bool:
    return settings.db_path.exists()


def require(settings: Settings) -> None:
    if not settings.db_path.exists():
        raise VaultNotFound(f"no vault at {settings.home}")
