"""The access log: :func:`AuditLog.record` is the only writer; proofs and checkpoints are read here.

Storage (schema 2, see ``pds.db``; every statement on these tables is ``pds.db.audit``):

- ``audit_log(idx, entry, leaf)``: entry ``idx`` (from 0) as its canonical bytes (RFC 8785
  JSON, see :func:`canonical`) and its RFC 9162 leaf hash ``SHA-256(0x00 || entry)``.
- ``audit_nodes(level, idx, hash)``: every perfect subtree of level >= 1 that an append
  completed (``RootAccumulator.append``); level 0 is ``audit_log.leaf``. A tree of n entries
  stores about n nodes, and any root or proof costs O(log n) indexed reads.
- ``audit_checkpoints(size, root, note, created_at)``: signed C2SP checkpoints, one per size.

An append joins the caller's transaction when there is one (a write and its entry commit
together) and otherwise commits a short ``BEGIN IMMEDIATE`` transaction, so the entry is on
disk before the caller answers; appends from threads of one process that arrive while
another's commit is in flight share the next commit (:class:`GroupCommit`). Appends from
several processes serialise on SQLite's write lock; each reads the tree's right edge inside
its transaction.

The vault signs a checkpoint after every :data:`CHECKPOINT_EVERY` entries, when
:data:`CHECKPOINT_SECONDS` have passed since the last one and the log has grown, and on
demand. Before signing it proves, from the stored tree, that the new tree extends the newest
signed one (RFC 9162 consistency proof); if that fails it refuses to sign, so the vault
never signs two checkpoints that contradict each other.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pds import clock
from pds.audit import checkpoint as cpmod
from pds.audit import merkle
from pds.db import audit as store
from pds.db import database_folder
from pds.db.locking import begin_immediate, commit, rollback
from pds.diskfull import DiskFull, is_disk_full
from pds.errors import NotFound, PdsError, ValidationError
from pds.words import plural

ENTRY_VERSION = 1
CHECKPOINT_EVERY = 1000
"""Sign a checkpoint at least once every this many entries."""
CHECKPOINT_SECONDS = 300
"""... and when this many seconds have passed since the last one and the log has grown."""

DECISIONS = ("allowed", "refused", "dropped")
"""``dropped``: a webhook the vault did not send (nobody asked; no business was refused)."""
_STRING_FIELDS = ("actor", "action", "decision", "client", "category", "purpose", "reason")


class AuditError(PdsError):
    """The stored log contradicts itself: the vault refuses to sign over it."""

    code = "audit_log_damaged"
    status = 500
    hint = "Run `pds audit verify` to find the damaged entry, then restore from a backup."


_MAX_SAFE_INT = 2**53 - 1


def _plain(value: Any) -> bool:
    """True for JSON made only of ASCII-keyed objects, strings, safe integers, booleans, null
    and arrays of those: for such values RFC 8785 is exactly ``json.dumps`` with sorted keys
    and no whitespace (same escapes, and code-point order equals UTF-16 order for ASCII)."""
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT
    if isinstance(value, dict):
        return all(isinstance(k, str) and k.isascii() and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return False


def canonical(entry: Mapping[str, Any]) -> bytes:
    """The entry's bytes as hashed and stored: RFC 8785 JSON Canonicalization Scheme.

    Entries are nearly always plain (see :func:`_plain`), and then the standard library
    writes the canonical form about three times faster than the general implementation; a
    property test holds the two equal. Anything else goes through ``rfc8785``.
    """
    entry = dict(entry)
    if _plain(entry):
        try:
            text = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            return text.encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: let rfc8785 refuse it with its own message
    return rfc8785.dumps(entry)


def make_entry(
    action: str,
    *,
    actor: str,
    decision: str = "allowed",
    client_id: str | None = None,
    grant_id: int | str | None = None,
    category: str | None = None,
    count: int | None = None,
    purpose: str | None = None,
    rule_ids: Sequence[str] = (),
    reason: str | None = None,
    detail: Mapping[str, Any] | None = None,
    at: str | None = None,
    record: int | None = None,
    span: Sequence[Sequence[Any]] | None = None,
) -> dict[str, Any]:
    """One log entry: who (actor, client), did what (action), to which data (category, count,
    grant, purpose; for a records read, the ``record`` id it returned, or the ``span`` of
    the page: the ``[occurred_at, id]`` keys of its first and last record), the decision and
    the policy rules behind it. Never record contents."""
    if decision not in DECISIONS:
        raise ValidationError(f"audit decision {decision!r} is not one of {', '.join(DECISIONS)}")
    if not action or not actor:
        raise ValidationError("an audit entry needs an action and an actor")
    entry: dict[str, Any] = {
        "v": ENTRY_VERSION,
        "time": at or clock.now_iso_ms(),
        "actor": actor,
        "action": action,
        "decision": decision,
    }
    optional = {
        "client": client_id,
        "grant": str(grant_id) if grant_id is not None else None,
        "category": category,
        "count": count,
        "purpose": purpose,
        "reason": reason,
        "record": record,
        "span": [list(key) for key in span] if span is not None else None,
    }
    entry.update({k: v for k, v in optional.items() if v is not None})
    if rule_ids:
        entry["rules"] = list(rule_ids)
    if detail:
        entry["detail"] = dict(detail)
    for key in _STRING_FIELDS:
        if key in entry and not isinstance(entry[key], str):
            raise ValidationError(f"audit field {key!r} must be a string")
    if "count" in entry and (isinstance(count, bool) or not isinstance(count, int)):
        raise ValidationError("audit field 'count' must be an integer")
    if "record" in entry and not _whole(record):
        raise ValidationError("audit field 'record' must be an integer")
    if "span" in entry and not _span(entry["span"]):
        raise ValidationError("audit field 'span' must be two [occurred_at, id] keys")
    return entry


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _span(value: list[list[Any]]) -> bool:
    """Two keys ``[occurred_at, id]`` (a string and an integer each)."""
    return len(value) == 2 and all(
        len(key) == 2 and isinstance(key[0], str) and _whole(key[1]) for key in value
    )


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str
    created_at: str


@dataclass(eq=False)
class _Pending:
    """One entry waiting for its group commit, then its outcome."""

    data: bytes
    leaf: bytes
    index: int = -1
    error: BaseException | None = None
    settled: bool = False


class GroupCommit:
    """Group commit of one vault's access log among the threads of one process.

    An entry written outside a transaction must be on disk before its caller answers, and
    each commit costs an fsync (``synchronous=FULL``) taken under the one writer lock, so
    appends one commit each cap a server at one request per fsync. Here each appending thread
    queues its entry and waits its turn at the commit; the thread whose turn comes first
    commits every entry queued by then in one transaction of its own connection, one fsync
    for all, and the others then find theirs settled. No thread returns before its own entry
    is committed; if the batch fails, every thread in it raises the batch's error and none
    of its entries is in the log. A lone caller (the CLI, a sync worker) commits alone, as
    before. Written by hand: this is the leader/follower pattern SQLite itself does not
    offer across connections.
    """

    _groups: ClassVar[dict[tuple[int, str], GroupCommit]] = {}
    _groups_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self._queue: list[_Pending] = []
        self._committing = False
        self._cond = threading.Condition(threading.Lock())
        self.batches = 0
        """Commits made (read by tests and the API benchmark)."""
        self.entries = 0
        """Entries those commits carried."""

    @classmethod
    def of(cls, conn: sqlite3.Connection) -> GroupCommit:
        """The group of ``conn``'s vault in this process (a forked worker gets its own);
        a connection without a writer lock gets a group of its own."""
        lock = getattr(conn, "writer_lock", None)
        if lock is None:
            return cls()
        key = (os.getpid(), str(lock.path))
        with cls._groups_lock:
            group = cls._groups.get(key)
            if group is None:
                group = cls._groups[key] = cls()
            return group

    def append(self, log: AuditLog, data: bytes, leaf: bytes) -> int:
        """Queue one entry, see it committed (by this thread or another), return its index."""
        mine = _Pending(data, leaf)
        with self._cond:
            self._queue.append(mine)
            while self._committing and not mine.settled:
                self._cond.wait()
            lead = not mine.settled
            if lead:  # nobody is committing and this entry is still queued: commit them all
                self._committing = True
                batch, self._queue = self._queue, []
        if lead:
            try:
                log._commit(batch)
            finally:
                with self._cond:
                    for pending in batch:
                        pending.settled = True
                    self._committing = False
                    self.batches += 1
                    self.entries += len(batch)
                    self._cond.notify_all()
        if mine.error is not None:
            raise mine.error
        return mine.index


class AuditLog:
    """The access log of one vault connection.

    ``signing_key`` is called (once) when a checkpoint must be signed; ``None`` means this
    connection cannot sign (entries are still appended; the next signer covers them).
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        origin: str,
        signing_key: Any = None,
        *,
        every: int = CHECKPOINT_EVERY,
        seconds: float = CHECKPOINT_SECONDS,
    ) -> None:
        self.conn = conn
        self.origin = origin
        self._signing_key_fn = signing_key
        self._signing_key: Ed25519PrivateKey | None = None
        self.every = every
        self.seconds = seconds
        # Right edge of the tree as last seen by this connection, with the leaf it ends in;
        # checked against the table on every append, so another writer or a rolled-back
        # transaction only costs a re-read.
        self._acc: merkle.RootAccumulator | None = None
        self._last_leaf: bytes | None = None
        self._last_checkpoint: tuple[int, float] | None = None

    # -- writing ----------------------------------------------------------------------------

    def record(self, entry: Mapping[str, Any]) -> int:
        """Append one entry (see :func:`make_entry`); return its index. The only writer."""
        data = canonical(entry)
        leaf = merkle.leaf_hash(data)
        conn = self.conn
        if conn.in_transaction:
            return self._append(data, leaf)
        return GroupCommit.of(conn).append(self, data, leaf)

    def _commit(self, batch: Sequence[_Pending]) -> None:
        """Append ``batch`` in one transaction of this connection (one fsync for all) and
        settle each: its index, or the error that kept the whole batch off the disk."""
        conn = self.conn
        try:
            begin_immediate(conn)
            try:
                indexes = [self._append(p.data, p.leaf) for p in batch]
            except BaseException:
                rollback(conn)
                raise
            commit(conn)
        except BaseException as exc:
            self._acc = None
            if conn.in_transaction:  # a failed COMMIT can leave it open
                rollback(conn)
            error = DiskFull(database_folder(conn)) if is_disk_full(exc) else exc
            for p in batch:
                p.error = error
            if error is exc:
                raise
            raise error from None
        for p, index in zip(batch, indexes, strict=True):
            p.index = index

    def _append(self, data: bytes, leaf: bytes) -> int:
        acc = self._accumulator()
        index = acc.size
        completed = acc.append(leaf)
        store.append(self.conn, index, data.decode("utf-8"), leaf, completed[1:])
        self._last_leaf = leaf
        if self._due(acc.size):
            self._sign(acc)
        return index

    def _accumulator(self) -> merkle.RootAccumulator:
        row = store.last_leaf(self.conn)
        size, last = (row[0] + 1, row[1]) if row else (0, None)
        acc = self._acc
        if acc is None or acc.size != size or self._last_leaf != last:
            acc = self._acc = merkle.RootAccumulator.resume(size, self.perfect)
            self._last_leaf = last
            self._last_checkpoint = None
        return acc

    def _due(self, size: int) -> bool:
        if self._signing_key_fn is None:
            return False
        if self._last_checkpoint is None:
            latest = self.latest_checkpoint()
            self._last_checkpoint = (
                (latest.size, _epoch(latest.created_at)) if latest else (0, time.time())
            )
        last_size, last_time = self._last_checkpoint
        if size - last_size >= self.every:
            return True
        return size > last_size and time.time() - last_time >= self.seconds

    def checkpoint(self) -> StoredCheckpoint:
        """Sign a checkpoint for the log as it is now, unless the newest one already covers it."""
        if self._signing_key_fn is None:
            raise AuditError("this connection cannot sign checkpoints (the vault is locked)")
        conn = self.conn
        own = not conn.in_transaction
        if own:
            begin_immediate(conn)
        try:
            acc = self._accumulator()
            latest = self.latest_checkpoint()
            if latest is None or latest.size < acc.size:
                self._sign(acc)
            result = self.latest_checkpoint()
        except BaseException:
            if own:
                rollback(conn)
            self._acc = None
            raise
        if own:
            commit(conn)
        assert result is not None
        return result

    def _sign(self, acc: merkle.RootAccumulator) -> None:
        size, root = acc.size, acc.root()
        previous = self.latest_checkpoint()
        if previous is not None:
            if previous.size > size:
                raise AuditError(
                    f"the log has {plural(size, 'entry')} but a checkpoint was signed at "
                    f"{previous.size}"
                )
            proof = merkle.consistency_proof(previous.size, size, self.perfect)
            if not merkle.verify_consistency(previous.size, size, previous.root, root, proof):
                raise AuditError(
                    f"the stored log of {plural(size, 'entry')} does not extend the checkpoint "
                    f"signed at size {previous.size}; refusing to sign"
                )
        key = self._key()
        note = cpmod.sign_checkpoint(cpmod.Checkpoint(self.origin, size, root), self.origin, key)
        created = clock.now_iso_ms()
        store.add_checkpoint(self.conn, size, root, note, created)
        self._last_checkpoint = (size, time.time())

    def _key(self) -> Ed25519PrivateKey:
        if self._signing_key is None:
            self._signing_key = self._signing_key_fn()
        return self._signing_key

    # -- reading ----------------------------------------------------------------------------

    def perfect(self, level: int, index: int) -> bytes:
        """The stored hash of the perfect subtree ``(level, index)`` (merkle.PerfectFn)."""
        found = store.leaf(self.conn, index) if level == 0 else store.node(self.conn, level, index)
        if found is None:
            raise AuditError(f"the stored tree lacks node ({level}, {index})")
        return found

    def size(self) -> int:
        return store.size(self.conn)

    def root(self, size: int | None = None) -> bytes:
        size = self.size() if size is None else size
        return merkle.subtree_hash(0, size, self.perfect)

    def entries(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, str, bytes]]:
        """``(index, canonical entry, leaf hash)`` for ``start <= index < end``, in order."""
        return store.entries(self.conn, start, end)

    def tail(self, n: int) -> list[tuple[int, str]]:
        return store.tail(self.conn, n)

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        row = store.latest_checkpoint(self.conn)
        return StoredCheckpoint(*row) if row else None

    def checkpoints(self) -> list[StoredCheckpoint]:
        return [StoredCheckpoint(*row) for row in store.checkpoints(self.conn)]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        self._check_size(size)
        return merkle.inclusion_proof(index, size, self.perfect)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        self._check_size(second)
        return merkle.consistency_proof(first, second, self.perfect)

    def _check_size(self, size: int) -> None:
        have = self.size()
        if size > have:
            raise NotFound(f"the log has {plural(have, 'entry')}, not {size}")

    def summary(self, since: str | None = None, until: str | None = None) -> list[dict[str, Any]]:
        """Accesses per day, client, category, action and decision (``time`` in [since, until))."""
        return store.summary(self.conn, since, until)

    def recent_api_calls(self, n: int) -> list[tuple[int, str]]:
        """The last ``n`` calls to the business and auditor APIs (``api.*`` entries) as
        ``(index, canonical entry)``, newest first."""
        return store.recent_api_entries(self.conn, n)

    def api_calls_between(self, since: str, until: str) -> list[tuple[int, str]]:
        """Every ``api.*`` entry with ``since <= time < until``, oldest first."""
        return store.api_entries_between(self.conn, since, until)


def public_key_of(key: Ed25519PrivateKey) -> Ed25519PublicKey:
    return key.public_key()


def _epoch(iso: str) -> float:
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
