"""Safe reading of zip archives: entry names checked, entries streamed, bombs refused.

``SafeZip`` opens a zip file for connectors that read archives (Google Takeout, Apple
Health ``export.zip``, pds export archives). Nothing is ever extracted to disk: an entry is
read as a stream, and an entry's name is only ever matched against, never used as a path.

Limits, each ending in an ``ArchiveError`` (an ``ImportFormatError``) naming the archive:

- entry count: read from the end-of-central-directory record (zip64 too), and counted by
  walking the central directory's record headers (the record's count may lie), before
  ``zipfile`` parses anything, so a 100,000-entry archive is refused in constant memory;
- unsafe names: an archive with any entry named with a ``..`` component, an absolute path,
  a backslash, a drive letter (``C:``), a NUL or another control character is refused whole
  (no real export needs one, and a name that would escape a directory says the archive was
  made to attack);
- duplicate names and encrypted entries are refused (ambiguous, unreadable);
- decompressed bytes: the total over the archive (``max_total_bytes``), and the ratio of
  decompressed to compressed bytes, per entry and over the archive (``max_ratio``), checked
  once more than ``RATIO_FLOOR`` bytes come out (a small file of spaces may legitimately
  compress 1000:1; a gigabyte may not). Checked twice. First, before a byte is read, on the
  sizes the central directory declares: the archive's total when it is opened, and each
  entry's own ratio when it is opened (``expect`` checks the entries a connector will read
  all at once, before it reads the first). ``zipfile`` never yields more of an entry than
  its declared size (and a CRC error when the data is longer), so the declared sizes bound
  what can come out; a well-formed bomb is refused at once, before a connector has made
  one record, so an import writes nothing for it. Second, the bytes actually produced are
  counted as they are read, against the same limits.

``first_entry_name(head)`` reads the first local header in a file's first bytes, so a
connector's ``detect`` can tell ``Takeout/...`` from ``apple_health_export/...``.

The end records and central-directory headers are read by hand (a few ``struct`` fields)
because ``zipfile`` parses the whole central directory into objects, every entry of it,
before it says how many there are.
"""

from __future__ import annotations

import io
import os
import re
import struct
import zipfile
import zlib
from typing import BinaryIO

from pds.errors import ImportFormatError

LOCAL_HEADER = b"PK\x03\x04"
EMPTY_ARCHIVE = b"PK\x05\x06"
MAX_ENTRIES = 50_000
MAX_TOTAL_BYTES = 16 * 1024**3
MAX_RATIO = 100
RATIO_FLOOR = 1 << 20
HINT = "Make the archive again from the original export, or import its files one by one."

_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"
_CD_SIGNATURE = b"PK\x01\x02"
_CD_HEADER = 46
_DRIVE = re.compile(r"[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# What zipfile raises on a corrupt entry: bad headers, CRC, truncated or invalid streams,
# negative seeks from lying offsets, unsupported methods, encryption it cannot read.
_ENTRY_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    OSError,
    ValueError,
    struct.error,
)


class ArchiveError(ImportFormatError):
    """An archive refused or unreadable as a whole (its message names the archive)."""


def is_zip(head: bytes) -> bool:
    """True if the bytes begin like a zip archive (a local header, or an empty archive)."""
    return head.startswith((LOCAL_HEADER, EMPTY_ARCHIVE))


def first_entry_name(head: bytes) -> str | None:
    """The name in the first local file header of ``head``, or None if there is none."""
    if not head.startswith(LOCAL_HEADER) or len(head) < 30:
        return None
    (flags,) = struct.unpack_from("<H", head, 6)
    (name_length,) = struct.unpack_from("<H", head, 26)
    raw = head[30 : 30 + name_length]
    if len(raw) < name_length:
        return None
    return raw.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")


def unsafe_reason(name: str) -> str | None:
    """Why an entry name could escape a directory, or None if it is a plain relative name."""
    if _CONTROL.search(name):
        return "a control character"
    if "\\" in name:
        return "a backslash"
    if name.startswith("/"):
        return "an absolute path"
    if _DRIVE.match(name):
        return "a drive letter"
    if ".." in name.split("/"):
        return 'a ".." component'
    return None


class SafeZip:
    """A zip archive read with limits; use as a context manager.

    ``stream`` must be seekable (a file opened ``"rb"``). ``filename`` is used in messages.
    """

    def __init__(
        self,
        stream: BinaryIO,
        filename: str,
        *,
        max_entries: int = MAX_ENTRIES,
        max_total_bytes: int = MAX_TOTAL_BYTES,
        max_ratio: float = MAX_RATIO,
    ) -> None:
        self.filename = os.path.basename(filename)
        self.max_total_bytes = max_total_bytes
        self.max_ratio = max_ratio
        self.total = 0  # decompressed bytes produced so far, over all entries
        self._size = _stream_size(stream)
        count = _count_entries(stream, self._size, self.filename, max_entries)
        if count > max_entries:
            raise ArchiveError(
                f"{self.filename}: the archive has more than {max_entries:,} entries, "
                "the most pds reads",
                hint=HINT,
            )
        try:
            self._zip = zipfile.ZipFile(stream)
        except (*_ENTRY_ERRORS, zipfile.LargeZipFile) as exc:
            raise _not_zip(self.filename, exc) from None
        self._infos = self._check_names()
        self._check_declared_total()

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    def _check_names(self) -> dict[str, zipfile.ZipInfo]:
        infos: dict[str, zipfile.ZipInfo] = {}
        for info in self._zip.infolist():
            name = info.orig_filename
            reason = unsafe_reason(name)
            if reason is not None:
                raise ArchiveError(
                    f'{self.filename}: entry "{_show(name)}" has {reason} in its name; '
                    "pds refuses archives with unsafe entry names",
                    hint=HINT,
                )
            if info.is_dir():
                continue
            if name in infos:
                raise ArchiveError(
                    f'{self.filename}: entry "{_show(name)}" appears twice', hint=HINT
                )
            infos[name] = info
        return infos

    def _check_declared_total(self) -> None:
        """The archive's limits on the sizes its entries declare, before anything is read."""
        total = 0
        for name, info in self._infos.items():
            total += info.file_size
            self._check_total(name, total)

    def expect(self, names: list[str]) -> None:
        """Check, before any is read, each entry's declared size against the ratio limit:
        a connector names all the entries it will read, so a bomb in the last one is
        refused before the first has produced a record."""
        for name in names:
            info = self._infos.get(name)
            if info is not None:
                self._check_entry(name, info.file_size, info.compress_size)

    def names(self) -> list[str]:
        """The file entries' names in archive order (directories left out); for matching only."""
        return list(self._infos)

    def size(self, name: str) -> int:
        """The entry's declared uncompressed size (a hint for progress, never trusted)."""
        return self._infos[name].file_size

    def open(self, name: str) -> io.BufferedReader:
        """A binary stream of the entry, counted and capped as it is decompressed."""
        info = self._infos.get(name)
        if info is None:
            raise ArchiveError(f'{self.filename}: no entry "{_show(name)}"', hint=HINT)
        if info.flag_bits & 0x1:
            raise ArchiveError(
                f"{self.filename} {_show(name)}: the entry is encrypted",
                hint="Export it again without a password.",
            )
        self.expect([name])
        try:
            inner = self._zip.open(info)
        except _ENTRY_ERRORS as exc:
            raise self._entry_error(name, exc) from None
        return io.BufferedReader(_Entry(self, name, inner, info.compress_size), 1 << 16)

    def _entry_error(self, name: str, exc: BaseException) -> ArchiveError:
        return ArchiveError(
            f"{self.filename} {_show(name)}: the entry cannot be read ({exc})", hint=HINT
        )

    def _count(self, name: str, produced: int, entry_total: int, compressed: int) -> None:
        """Add ``produced`` bytes; raise when a limit is passed."""
        self.total += produced
        self._check_total(name, self.total)
        self._check_entry(name, entry_total, compressed)

    def _check_total(self, name: str, total: int) -> None:
        """Raise if ``total`` bytes out of the archive (up to entry ``name``) pass a limit."""
        if total > self.max_total_bytes:
            raise ArchiveError(
                f"{self.filename}: more than {self.max_total_bytes:,} bytes once "
                f"decompressed (at {_show(name)}); pds stops there",
                hint=HINT,
            )
        if total > RATIO_FLOOR and total > self.max_ratio * max(self._size, 1):
            raise self._bomb(name)

    def _check_entry(self, name: str, size: int, compressed: int) -> None:
        """Raise if ``size`` bytes out of an entry of ``compressed`` bytes pass the ratio."""
        if size > RATIO_FLOOR and size > self.max_ratio * max(compressed, 1):
            raise self._bomb(name)

    def _bomb(self, name: str) -> ArchiveError:
        return ArchiveError(
            f"{self.filename} {_show(name)}: decompresses to more than {self.max_ratio:g} "
            "times its compressed size; this looks like a zip bomb and pds stops reading",
            hint=HINT,
        )


class _Entry(io.RawIOBase):
    """One entry's decompressed bytes, counted against the archive's limits."""

    def __init__(self, owner: SafeZip, name: str, inner: BinaryIO, compressed: int) -> None:
        self._owner = owner
        self._name = name
        self._inner = inner
        self._compressed = compressed
        self._produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        try:
            data = self._inner.read(len(buffer))
        except _ENTRY_ERRORS as exc:
            raise self._owner._entry_error(self._name, exc) from None
        n = len(data)
        buffer[:n] = data
        self._produced += n
        self._owner._count(self._name, n, self._produced, self._compressed)
        return n

    def close(self) -> None:
        self._inner.close()
        super().close()


def _stream_size(stream: BinaryIO) -> int:
    end = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    return end


def _count_entries(stream: BinaryIO, size: int, filename: str, limit: int) -> int:
    """The entry count, from the end-of-central-directory record (zip64 aware), and — as that
    count may lie — from walking the central directory's record headers, stopping as soon as
    ``limit`` is passed. Constant memory; nothing is parsed into objects."""
    tail_size = min(size, _EOCD_SIZE + 0xFFFF)
    stream.seek(size - tail_size)
    tail = stream.read(tail_size)
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < _EOCD_SIZE:
        raise _not_zip(filename, "no end-of-central-directory record")
    count, cd_size = struct.unpack_from("<HI", tail, at + 10)
    cd_end = size - tail_size + at
    locator = at - 20
    if locator >= 0 and tail[locator : locator + 4] == _ZIP64_LOCATOR:
        record_at = cd_end - 20 - 56  # where it is unless an extensible data sector follows
        record = _read_at(stream, record_at, 56)
        if len(record) < 56 or record[:4] != _ZIP64_EOCD:
            record_at = struct.unpack_from("<Q", tail, locator + 8)[0]
            record = _read_at(stream, record_at, 56)
        if len(record) < 56 or record[:4] != _ZIP64_EOCD:  # a short read: cut or forged
            raise _not_zip(filename, "its zip64 end record is missing")
        count64, cd_size = struct.unpack_from("<QQ", record, 32)
        count, cd_end = max(count, count64), record_at
    if count <= limit:
        count = max(count, _walk_directory(stream, cd_end - cd_size, cd_end, limit))
    stream.seek(0)
    return count


def _read_at(stream: BinaryIO, offset: int, n: int) -> bytes:
    if offset < 0:
        return b""
    stream.seek(offset)
    return stream.read(n)


def _walk_directory(stream: BinaryIO, start: int, end: int, limit: int) -> int:
    """How many central-directory records lie between ``start`` and ``end`` (up to limit+1)."""
    if start < 0:
        return 0  # zipfile reports the broken directory
    stream.seek(start)
    reader = io.BufferedReader(_Window(stream, end - start), 1 << 16)
    count = 0
    while count <= limit:
        header = reader.read(_CD_HEADER)
        if len(header) < _CD_HEADER or header[:4] != _CD_SIGNATURE:
            break
        count += 1
        names, extra, comment = struct.unpack_from("<HHH", header, 28)
        skipped = reader.read(names + extra + comment)
        if len(skipped) < names + extra + comment:
            break
    return count


class _Window(io.RawIOBase):
    """At most ``length`` bytes of ``stream`` from where it stands."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        self._stream = stream
        self._left = max(length, 0)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self._stream.read(min(len(buffer), self._left))
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


def _not_zip(filename: str, why: object) -> ArchiveError:
    return ArchiveError(
        f"{filename}: not a readable zip archive ({why})",
        hint="Download the archive again; it may be truncated.",
    )


def _show(name: str) -> str:
    """An entry name for a message: control characters escaped, long names cut."""
    shown = name if name.isprintable() else repr(name)[1:-1]
    return shown if len(shown) <= 120 else shown[:120] + "..."
