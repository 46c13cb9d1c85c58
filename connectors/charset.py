"""The one charset rule every text connector follows (CSV, MT940, vCard, iCalendar, OFX).

A file is read as UTF-8 (a UTF-8 byte order mark is dropped). Where its bytes are not valid
UTF-8:

1. a charset the format declares for that text (OFX ``CHARSET:1252``, an XML ``encoding``,
   a vCard ``CHARSET=`` parameter, a CSV mapping's ``encoding``) is used;
2. else, if the file holds no valid multi-byte UTF-8 anywhere (and no byte order mark), it
   is a legacy file and is read as Windows-1252, which also reads ISO-8859-1 text right;
3. else the file is UTF-8 with a bad byte in it. Reading it as Windows-1252 would turn every
   good ``é`` into ``Ã©``, silently; so the bad byte is refused, naming its line, column and
   offset in the file. Where the format's rows stand alone (a CSV row, a vCard card) that
   row is a ``Rejected`` that ``--skip-bad`` leaves out, the rest read as the UTF-8 it is.

Valid multi-byte UTF-8 is decisive because Latin-1 text practically never forms it (an
accented letter followed by a byte 0x80-0xBF), while one stray byte in UTF-8 text is common
(a hand-edited cell, a cut multi-byte character). Streamed files are read once; only when
the first non-UTF-8 line comes before any multi-byte UTF-8 is the rest of the file scanned
ahead (``os.pread``, so the stream does not move) to decide between 2 and 3. A stream that
cannot be read again (an entry inside a zip) is decided on what came before; if multi-byte
UTF-8 turns up after that, the file is refused at the first bad byte.
"""

from __future__ import annotations

import codecs
import io
import os
import re
from typing import BinaryIO

LEGACY = "cp1252"
CHUNK = 1 << 20
NAMES = {"utf-8": "UTF-8", "cp1252": "Windows-1252", "iso-8859-1": "ISO-8859-1"}
# Valid multi-byte UTF-8 decoded with surrogateescape: any character past ASCII that is not
# one of the lone surrogates U+DC80-U+DCFF standing for an undecodable byte.
_MULTIBYTE = re.compile("[^\x00-\x7f\udc80-\udcff]")


def has_multibyte(data: bytes) -> bool:
    """True if ``data`` holds at least one valid multi-byte UTF-8 character."""
    if data.isascii():
        return False
    return _MULTIBYTE.search(data.decode("utf-8", "surrogateescape")) is not None


def stream_has_multibyte(stream: BinaryIO) -> bool | None:
    """Whether the whole stream holds valid multi-byte UTF-8, read without moving it; None
    when it cannot be read a second time (not a file and not seekable)."""
    try:
        fd: int | None = stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        fd = None
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    if fd is not None:
        offset = 0
        while chunk := os.pread(fd, CHUNK, offset):
            offset += len(chunk)
            if not chunk.isascii() and _MULTIBYTE.search(decoder.decode(chunk)):
                return True
        return False
    try:
        if not stream.seekable():
            return None
        back = stream.tell()
    except (AttributeError, OSError, ValueError):
        return None
    try:
        stream.seek(0)
        while chunk := stream.read(CHUNK):
            if not chunk.isascii() and _MULTIBYTE.search(decoder.decode(chunk)):
                return True
        return False
    finally:
        stream.seek(back)


def not_utf8(byte: int, column: int, offset: int, bom: bool = False) -> str:
    """The message for a byte that is not valid UTF-8 in a file that is UTF-8."""
    why = "starts with a UTF-8 byte order mark" if bom else "is UTF-8 elsewhere"
    return (
        f"byte 0x{byte:02X} at column {column} (file offset {offset:,}) is not valid UTF-8, "
        f"and the file {why}"
    )


def not_in(charset: str, byte: int, column: int) -> str:
    """The message for a byte the charset a line is read in does not have."""
    return f"byte 0x{byte:02X} at column {column} is not valid {NAMES.get(charset, charset)}"


def declared_codec(name: str | None) -> str | None:
    """Python's name for a declared legacy text charset, or None: unknown, not a text codec
    (base64, hex, zlib...), or UTF-8 itself (a file that declares UTF-8 but is not valid
    UTF-8 is decided by the rule, as if it declared nothing)."""
    if not name:
        return None
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    if not info._is_text_encoding or info.name in ("utf-8", "utf-8-sig"):
        return None
    return info.name


class FileCharset:
    """The rule applied to one file as it is read, line by line or piece by piece.

    ``decode(raw, line, offset)`` returns the text, or raises ``BadByte`` for a byte that is
    not valid UTF-8 in a UTF-8 file (case 3), or ``NotText`` for a byte the legacy charset
    lacks too.
    """

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self.stream = stream
        self.utf8 = False  # valid multi-byte UTF-8 (or a BOM) seen
        self.bom = False
        self.legacy: str | None = None  # decided: read non-UTF-8 text in this charset
        self._blind = False  # decided without seeing the rest of the file
        self._first_bad: BadByte | None = None

    def saw_bom(self) -> None:
        self.utf8 = self.bom = True

    def decode(self, raw: bytes, line: int, offset: int, declared: str | None = None) -> str:
        """``raw`` (one line or piece starting at file ``offset``, on ``line``) as text."""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = BadByte(line, raw[exc.start], exc.start + 1, offset + exc.start, self.bom)
            charset = declared or self._fallback(bad)
            if charset is None:
                raise bad from None
            try:
                return raw.decode(charset)
            except UnicodeDecodeError as exc2:
                raise NotText(line, not_in(charset, raw[exc2.start], exc2.start + 1)) from None
        if not self.utf8 and has_multibyte(raw):
            self.utf8 = True
            if self._blind and self._first_bad is not None:
                raise self._first_bad  # read as legacy before; the file is UTF-8 after all
        return text

    def _fallback(self, bad: BadByte) -> str | None:
        if self.legacy is not None:
            return self.legacy
        if not self.utf8:
            ahead = stream_has_multibyte(self.stream) if self.stream is not None else None
            if ahead:
                self.utf8 = True
            else:
                self.legacy, self._blind, self._first_bad = LEGACY, ahead is None, bad
                return LEGACY
        return None


class BadByte(Exception):
    """A byte that is not valid UTF-8 in a UTF-8 file: ``line`` and ``message`` say where."""

    def __init__(self, line: int, byte: int, column: int, offset: int, bom: bool) -> None:
        self.line = line
        self.message = not_utf8(byte, column, offset, bom)
        super().__init__(self.message)


class NotText(Exception):
    """A byte that the charset a line is read in does not have."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(message)


def decode_whole(data: bytes, declared: str | None = None) -> str:
    """A whole file's bytes by the rule (``BadByte``/``NotText`` name the line)."""
    bom = data.startswith(codecs.BOM_UTF8)
    body = data[len(codecs.BOM_UTF8) :] if bom else data
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start
    line = body.count(b"\n", 0, start) + 1
    line_start = body.rfind(b"\n", 0, start) + 1
    column = start - line_start + 1
    offset = start + (len(codecs.BOM_UTF8) if bom else 0)
    charset = declared_codec(declared)
    if charset is None and not bom and not has_multibyte(body):
        charset = LEGACY
    if charset is None:
        raise BadByte(line, body[start], column, offset, bom)
    try:
        return body.decode(charset)
    except UnicodeDecodeError as exc2:
        line = body.count(b"\n", 0, exc2.start) + 1
        column = exc2.start - (body.rfind(b"\n", 0, exc2.start) + 1) + 1
        raise NotText(line, not_in(charset, body[exc2.start], column)) from None


def bad_lines(data: bytes) -> tuple[str, dict[int, BadByte]]:
    """A UTF-8 file that has bytes that are not UTF-8 (``decode_whole`` raised ``BadByte``):
    its text with U+FFFD in their place, and the first bad byte of each line they are on."""
    bom = data.startswith(codecs.BOM_UTF8)
    offset = len(codecs.BOM_UTF8) if bom else 0
    found: dict[int, BadByte] = {}
    for number, raw in enumerate(data[offset:].splitlines(keepends=True), 1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            found[number] = BadByte(number, raw[exc.start], exc.start + 1, offset + exc.start, bom)
        offset += len(raw)
    return data[3 if bom else 0 :].decode("utf-8", "replace"), found
