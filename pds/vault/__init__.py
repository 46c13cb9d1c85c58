"""The vault: the only code that sees a key; everything else asks it for data. Its SQL is
``pds.db`` (``pds.db.records``, ``pds.db.keys``), its access log ``pds.audit.log``, its backup
files ``pds.vault.backups``, its search index's words ``pds.vault.search``.

Longer than 500 lines: the vault's reads and writes are kept on one class, so every path
that stores or deletes a record is in one place with the index kept beside it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pds import clock
from pds import db as dbmod
from pds.audit.checkpoint import verifier_key
from pds.audit.log import AuditLog, make_entry
from pds.audit.verify import VaultSource
from pds.db import changes as db_changes
from pds.db import keys as keystore
from pds.db import locking
from pds.db import records as store
from pds.db import search as search_store
from pds.diskfull import reporting_disk_full
from pds.errors import (
    ConfigError,
    IdempotencyKeyReused,
    NotFound,
    VaultBusy,
    VaultExists,
    VaultLocked,
    VaultNotFound,
)
from pds.settings import Settings
from pds.vault import backups, keys, search
from pds.vault import records as recmod
from pds.vault.records import StoredRecord

IMPORT_CACHE_KIB = 32 * 1024
"""SQLite's page cache while a file is imported (KiB; 2 MiB otherwise): the search index's
rows go to pages all over its B-tree, and a cache that holds them saves writing them to the
WAL again and again before the commit (``pds.db.page_cache``); it is freed after. 32 MiB
keeps an import's peak memory near 110 MB at any size (64 MiB: 145 MB on 1,000,000 rows,
and no faster since the index lost its numbers' words and its by-record index)."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated record ready to seal: canonical payload bytes and its dedup inputs (and,
    from an import, the payload as a dict, so derived rows need not parse ``plain``)."""

    category: str
    occurred_at: str
    plain: bytes
    identity: str | None
    nth: int
    payload: dict[str, Any] | None = None


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

    def __init__(self, settings: Settings, conn: sqlite3.Connection, keyring: keys.Keyring):
        self.settings = settings
        self.conn = conn
        self.keyring = keyring
        self.log = AuditLog(conn, keystore.audit_origin(conn), lambda: keyring.signing_key(conn))
        self._terms: search.Terms | None = None

    @property
    def terms(self) -> search.Terms:
        """The search index's words to terms, under this vault's search key."""
        if self._terms is None:
            secret = self.derived_secret("search", search.salt(self.conn))
            self._terms = search.Terms(secret)
        return self._terms

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
        conn = dbmod.open_db(settings.db_path, create=True).conn
        try:
            with dbmod.transaction(conn):
                keyring = keys.create_keys(conn, passphrase, settings.kdf)
                vault = cls(settings, conn, keyring)
                vault.audit("vault.init", actor="owner")
                vault.log.checkpoint()
        except BaseException:
            conn.close()
            settings.db_path.unlink(missing_ok=True)
            raise
        settings.db_path.chmod(0o600)
        return vault

    @classmethod
    def open(cls, settings: Settings, passphrase: str) -> Vault:
        """Open and unlock the vault; VaultLocked if the passphrase does not unwrap its key."""
        conn = dbmod.open_db(settings.db_path).conn
        try:
            keyring = keys.unlock(conn, passphrase)
        except VaultLocked:
            try:
                # No key, so no signature: the next checkpoint the vault signs covers it.
                AuditLog(conn, keystore.audit_origin(conn)).record(
                    make_entry("unlock.failed", actor="owner", decision="refused")
                )
            except sqlite3.Error:
                pass  # a read-only or busy vault: the refusal itself still stands
            finally:
                conn.close()
            raise
        except BaseException:
            conn.close()
            raise
        return cls(settings, conn, keyring).indexed()

    @classmethod
    def with_keyring(cls, settings: Settings, keyring: keys.Keyring) -> Vault:
        """A new connection to an already unlocked vault (one per server worker process)."""
        conn = dbmod.open_db(settings.db_path).conn
        return cls(settings, conn, keys.Keyring(keyring.master)).indexed()

    def indexed(self) -> Vault:
        """This vault, its records all in the search index: a vault from before the index
        (schema 8) has its records indexed now, in batches (``search.fill``)."""
        if not search.complete(self.conn):
            try:
                search.fill(self.conn, self.terms, self._plain_or_none)
            except BaseException:
                self.close()
                raise
        return self

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------------

    def ingest(
        self,
        source: SourceInfo,
        items: Iterable[list[Prepared]],
        derive: Callable[[sqlite3.Connection, int, list[tuple[int, Prepared]]], None] | None = None,
    ) -> IngestResult:
        """Store batches of prepared records from one file, all or nothing.

        One transaction covers the whole file: a crash (even SIGKILL) leaves none of it, and
        running the import again completes it. Records already present (same dedup key)
        are counted, not stored again. ``derive`` is called in that transaction after each
        batch with the source's id and the batch's (id, record) pairs (derived rows, such as
        ``pds.vault.spending``'s; a pair whose record was already present is not stored).
        """
        conn = self.conn
        new = total = 0
        with dbmod.page_cache(conn, IMPORT_CACHE_KIB), dbmod.transaction(conn):
            source_id = store.add_source(
                conn, source.connector, source.filename, source.digest, clock.now_iso()
            )
            next_id = store.next_id(conn)
            dkey = self.keyring.dedup_key
            created = clock.now_iso()
            keys: dict[str, tuple] = {}  # checked against the stored key once per category
            for batch in items:
                rows, plains = [], []
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
                    plains.append(item.plain if item.payload is None else item.payload)
                    next_id += 1
                stored = store.insert_rows(conn, rows)
                search.index_new(conn, self.terms, rows, plains, stored)
                new += stored
                total += len(rows)
                if derive is not None:
                    derive(
                        conn,
                        source_id,
                        [(row[0], item) for row, item in zip(rows, batch, strict=True)],
                    )
            if new:
                store.finish_source(conn, source_id, new, total - new)
                db_changes.log_import(conn, source_id, created)
            else:
                store.delete_source(conn, source_id)
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
        found = store.row_by_dedup_key(conn, key)
        if found is not None:
            if idempotency_key is not None and (found[1], found[3], self._plain(found)) != (
                category,
                occurred_at,
                plain,
            ):
                raise IdempotencyKeyReused(idempotency_key)
            return found[0], False
        created = clock.now_iso()
        source_id = store.api_source(conn, source)
        if source_id is None:
            digest = self.keyring.source_digest()
            digest.update(source.encode())
            source_id = store.add_source(conn, "api", source, digest.digest(), created)
        rid = store.next_id(conn)
        version, aead = self.keyring.category_aead(conn, category, check=True)
        nonce, ct = recmod.seal(aead, rid, category, version, plain)
        store.insert_rows(
            conn, [(rid, category, source_id, occurred_at, key, version, nonce, ct, created)]
        )
        store.count_new(conn, source_id)
        db_changes.log(conn, created, category, "added", rid, rid, 1, source_id)
        self.terms.index(conn, [(rid, category, occurred_at, plain)])
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
        was = dbmod.secure_delete(conn)
        dbmod.set_secure_delete(conn, 1)
        try:
            with dbmod.transaction(conn):
                db_changes.log_forgotten_category(conn, category, clock.now_iso())
                count = store.delete_category(conn, category)
                key_version = keystore.destroy_category_key(conn, category, clock.now_iso())
                if not count and key_version is None:
                    raise NotFound(
                        f'the vault holds nothing in "{category}"; nothing was forgotten'
                    )
                if cleanup is not None:
                    cleanup(conn)
                self.audit("category.forget", actor="owner", category=category, count=count)
        finally:
            dbmod.set_secure_delete(conn, was)
            self.keyring.forget_cached()
        done = dbmod.checkpoint_wal(conn)
        return {"records": count, "key_version": key_version, "checkpointed": done}

    # -- reading ----------------------------------------------------------------------------

    def _plain(self, row: tuple) -> bytes:
        """The row's payload, decrypted: its canonical JSON bytes."""
        rid, category, _, _, version, nonce, ct = row
        cur_version, aead = self.keyring.category_aead(self.conn, category)
        if version != cur_version:
            raise recmod.SealError(f"record {rid} is sealed under a key that no longer exists")
        return recmod.open_sealed(aead, rid, category, version, nonce, ct)

    def _plain_or_none(self, row: tuple) -> bytes | None:
        try:
            return self._plain(row)
        except recmod.SealError:
            return None

    def _open_row(self, row: tuple) -> StoredRecord:
        rid, category, source_id, occurred_at = row[:4]
        payload = json.loads(self._plain(row).decode("utf-8"))
        return StoredRecord(rid, category, source_id, occurred_at, payload)

    def records(
        self,
        category: str | None = None,
        since: str | None = None,
        until: str | None = None,
        *,
        newest: bool = False,
        source: int | None = None,
    ) -> Iterator[StoredRecord]:
        """Matching records in time order (newest first when ``newest``; of one source
        when ``source`` is given), decrypted one page at a time."""
        rows = store.iter_pages(
            self.conn, category=category, since=since, until=until, newest=newest, source=source
        )
        for row in rows:
            yield self._open_row(row)

    def page(
        self,
        category: str,
        *,
        since: str | None = None,
        until: str | None = None,
        after: tuple[str, int] | None = None,
        limit: int = store.PAGE,
    ) -> list[StoredRecord]:
        """One page of one category after a keyset cursor (occurred_at, id)."""
        rows = store.query_rows(
            self.conn, category=category, since=since, until=until, after=after, limit=limit
        )
        return [self._open_row(r) for r in rows]

    def page_plain(self, category: str, **where: Any) -> list[tuple[int, str, bytes]]:
        """:meth:`page` (same arguments) as (id, occurred_at, canonical payload JSON bytes),
        not parsed: for a reader that passes whole payloads on unchanged (the API, when
        nothing is cut)."""
        rows = store.query_rows(self.conn, category=category, **where)
        return [(r[0], r[3], self._plain(r)) for r in rows]

    def get(self, record_id: int) -> StoredRecord:
        return self._open_row(store.row_by_id(self.conn, record_id))

    def search(
        self, query: str, *, category: str | None = None, per_category: int = 10
    ) -> list[tuple[str, int, list[StoredRecord]]]:
        """The records holding every word of ``query``, by category in name order (only
        ``category``'s when given): (category, how many match, the newest
        ``per_category`` of them)."""
        found = search.find(self.conn, self.terms.of_query(query), category, per_category)
        return [(g.category, g.count, [self.get(i) for i in g.ids]) for g in found]

    def search_records(
        self,
        query: str,
        category: str,
        *,
        since: str | None = None,
        until: str | None = None,
        newest: bool = False,
        source: int | None = None,
    ) -> Iterator[StoredRecord]:
        """:meth:`records` of one category (same arguments) holding every word of
        ``query``, found in the search index a page at a time."""
        terms = search_store.rarest_first(self.conn, self.terms.of_query(query))
        after = None
        while True:
            found = search_store.in_time_order(
                self.conn,
                terms,
                category,
                since=since,
                until=until,
                source_id=source,
                newest=newest,
                after=after,
                limit=store.PAGE,
            )
            for _, record_id in found:
                yield self.get(record_id)
            if len(found) < store.PAGE:
                return
            after = found[-1]

    def status(self) -> dict[str, Any]:
        conn = self.conn
        by_cat = store.counts_by_category(conn)
        params = keys.kdf_params(conn)
        return {
            "home": str(self.settings.home),
            "schema_version": dbmod.schema_version(conn),
            "created_at": keystore.get_meta(conn, "created_at"),
            "records": sum(by_cat.values()),
            "categories": by_cat,
            "sources": store.count_sources(conn),
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

    def sources(self, category: str | None = None) -> list[dict[str, Any]]:
        """The imported files (and API writers), oldest first; with ``category``, only those
        holding at least one record of it."""
        return store.list_sources(self.conn, category)

    def latest_sources(self, n: int) -> list[dict[str, Any]]:
        """The ``n`` newest sources, newest first, each with its records counted per category
        (``held``)."""
        return store.latest_sources(self.conn, n)

    # -- backup -----------------------------------------------------------------------------

    def backup(self, target: Path | str) -> Path:
        """Copy the vault with SQLite's online backup API: as encrypted as the vault itself.

        ``target`` is a file to create, or an existing folder to put a dated file in
        (``pds.vault.backups.claim``: nothing is ever overwritten).

        The ``backup`` access-log entry is written first, so the copy holds it. A vault
        held by a long write (an import holds its write transaction from start to end) is
        still read: it is copied as it was before that write, and the entry is written once
        the write ends (:data:`BACKUP_LOG_WAIT`; past it the copy is deleted and
        ``VaultBusy`` raised: no backup goes unlogged).
        """
        target = backups.claim(target)
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

        written = backups.copy_database(self.conn, target, before=log_first)
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
        ``keep`` remain, the new one always among them (``backups.prune_backups``).

        Returns the new backup and the files removed, oldest first. ``folder`` must be an
        existing folder; nothing is written or removed otherwise.
        """
        path = backups.keep_folder(folder, keep)
        written = self.backup(path)
        return written, backups.prune_backups(path, keep, written)


BACKUP_FIRST_WAIT = 2.0
"""Seconds a backup waits to write its access-log entry before the copy (so the copy
holds it); a vault held longer (an import) is copied first, its entry written after."""
BACKUP_LOG_WAIT = 900.0
"""Seconds a backup copied during a long write (an import) waits for it to end to write
its access-log entry; past that the copy is deleted (``VaultBusy``)."""


def restore(settings: Settings, source: Path, passphrase: str) -> dict[str, Any]:
    """Replace the vault at ``settings.home`` with a backup that ``passphrase`` unlocks.

    The backup is checked first (a pds vault, a known schema, the passphrase opens it); the
    copy into place uses SQLite's backup API, which writes the destination in one
    transaction. Returns the restored vault's status, with ``schema_before``: the backup's
    schema version (older than ``schema_version`` when opening the restored vault migrated
    it; the backup file itself is left as it was).
    """
    version = backups.put_back(settings, source, passphrase)
    with Vault.open(settings, passphrase) as vault:
        vault.audit("restore", actor="owner")
        return {**vault.status(), "schema_before": version}


def exists(settings: Settings) -> bool:
    return settings.db_path.exists()


def require(settings: Settings) -> None:
    if not settings.db_path.exists():
        raise VaultNotFound(f"no vault at {settings.home}")
