"""A full disk, said as such: one helper for every writer (import, upload, backup, export).

SQLite reports a full disk as ``SQLITE_FULL`` ("database or disk is full") and then rolls
the transaction back itself; the operating system reports it as ``ENOSPC`` (or ``EDQUOT``
for a full quota). ``reporting_disk_full`` turns either into a ``DiskFull`` that names the
folder whose disk is full and says what was kept, so a person reads
``Error: the disk holding /home/sam/vault is full; free some space and import again
(nothing was imported)`` instead of a message about a bug.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pds.errors import PdsError

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class DiskFull(PdsError, OSError):
    """The disk holding ``folder`` has no room left; nothing of the write was kept."""

    code = "disk_full"
    status = 507  # Insufficient Storage (RFC 4918)

    def __init__(self, folder: Path, again: str = "try again", kept: str = "nothing was changed"):
        super().__init__(f"the disk holding {folder} is full; free some space and {again} ({kept})")
        self.folder = folder


def is_disk_full(exc: BaseException) -> bool:
    """True for SQLite's SQLITE_FULL, an ENOSPC/EDQUOT OSError, or a ``DiskFull``."""
    if isinstance(exc, DiskFull):
        return True
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    if isinstance(exc, OSError):
        return exc.errno in _FULL_ERRNOS
    return False


@contextmanager
def reporting_disk_full(
    folder: Path, again: str = "try again", kept: str = "nothing was changed"
) -> Iterator[None]:
    """Raise ``DiskFull(folder, again, kept)`` in place of a full-disk error in the block.

    ``folder`` is the folder written to. A ``DiskFull`` raised deeper (by
    ``pds.db.transaction``) is said again in this caller's words. Other errors pass
    through unchanged.
    """
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        if not is_disk_full(exc):
            raise
        raise DiskFull(folder, again, kept) from None
