"""Line-by-line text reading for the bank connectors: charset, NUL bytes and line caps.

Bank CSV exports and MT940 files are read one physical line at a time, so memory stays flat
whatever the file's size. Each line is checked before it is decoded:

- a line longer than ``MAX_LINE`` bytes is refused at once (only that much is ever read);
- a NUL byte is refused: a text export never has one, a spreadsheet or UTF-16 file does;
- charset ``auto``: a UTF-8 BOM on the first line means the file is UTF-8 and every line must
  be valid UTF-8. Without a BOM, lines are read as UTF-8 until the first line that is not
  valid UTF-8; from there on the file is Windows-1252 (which reads ISO-8859-1 text right),
  unless an earlier line held non-ASCII UTF-8, in which case the file mixes two charsets and
  is refused. A line that is neither is refused naming the line;
- a declared charset (``utf-8``, ``iso-8859-1``, ``cp1252``) is used strictly.

Line endings are dropped: ``\\n``, ``\\r\\n`` and the ``\\r\\r\\n`` some Windows exports write.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import BinaryIO

from pds.errors import ImportFormatError

MAX_LINE = 1 << 20  # bytes in one physical line
ENCODINGS = ("auto", "utf-8", "iso-8859-1", "cp1252")


def text_lines(
    stream: BinaryIO, name: str, hint: str, encoding: str = "auto"
) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for each physical line, line ending dropped."""
    return iter(TextLines(stream, name, hint, encoding))


class TextLines:
    """The lines of a stream; ``use(encoding)`` changes the charset for the lines to come."""

    def __init__(self, stream: BinaryIO, name: str, hint: str, encoding: str = "auto") -> None:
        self.stream = stream
        self.name = name
        self.hint = hint
        self.decoder = _Decoder(name, hint, encoding)

    def use(self, encoding: str) -> None:
        """Read the following lines in ``encoding`` (``auto`` keeps the current choice)."""
        if encoding != "auto":
            self.decoder = _Decoder(self.name, self.hint, encoding)

    def __iter__(self) -> Iterator[tuple[int, str]]:
        readline = self.stream.readline
        name, hint = self.name, self.hint
        number = 0
        while raw := readline(MAX_LINE):
            number += 1
            if len(raw) == MAX_LINE and not raw.endswith(b"\n"):
                raise _error(name, number, f"the line is longer than {MAX_LINE:,} bytes", hint)
            if b"\x00" in raw:
                column = raw.index(b"\x00") + 1
                what = f"a NUL byte at column {column}; this is not a text file"
                raise _error(name, number, what, hint)
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
                self.decoder.bom()
            yield number, self.decoder.decode(raw, number).rstrip("\r\n")


class _Decoder:
    """Decides the charset line by line (see the module docstring)."""

    def __init__(self, name: str, hint: str, encoding: str) -> None:
        self.name = name
        self.hint = hint
        self.encoding = "utf-8" if encoding == "auto" else encoding
        self.auto = encoding == "auto"
        self.utf8_seen = False  # a line with non-ASCII UTF-8 was read
        self.bom_seen = False

    def bom(self) -> None:
        self.utf8_seen = self.bom_seen = True

    def decode(self, raw: bytes, number: int) -> str:
        try:
            text = raw.decode(self.encoding)
        except UnicodeDecodeError as exc:
            if not (self.auto and self.encoding == "utf-8") or self.utf8_seen:
                raise self._invalid(raw, exc, number) from None
            self.encoding = "cp1252"
            try:
                return raw.decode("cp1252")
            except UnicodeDecodeError as exc2:
                raise self._invalid(raw, exc2, number) from None
        if self.encoding == "utf-8" and not raw.isascii():
            self.utf8_seen = True
        return text

    def _invalid(self, raw: bytes, exc: UnicodeDecodeError, number: int) -> ImportFormatError:
        byte = raw[exc.start]
        charset = {"utf-8": "UTF-8", "cp1252": "Windows-1252", "iso-8859-1": "ISO-8859-1"}
        what = f"byte 0x{byte:02X} at column {exc.start + 1} is not valid " + charset.get(
            self.encoding, self.encoding
        )
        if self.auto and self.bom_seen:
            what += " (the file starts with a UTF-8 byte order mark)"
        elif self.auto and self.utf8_seen and self.encoding == "utf-8":
            what += " (earlier lines were UTF-8)"
        return _error(self.name, number, what, self.hint)


def _error(name: str, number: int, what: str, hint: str) -> ImportFormatError:
    return ImportFormatError(f"{name} line {number}: {what}", hint=hint)


def show(value: str) -> str:
    """A value for a message: control characters escaped, long values cut."""
    shown = value if value.isprintable() else repr(value)[1:-1]
    return shown if len(shown) <= 40 else shown[:40] + "..."
