"""Line-by-line text reading for the CSV and MT940 connectors: charset, NUL bytes, line caps.

Bank CSV exports, midata files and MT940 files are read one physical line at a time, so
memory stays flat whatever the file's size. Each line is checked before it is decoded:

- a line longer than ``MAX_LINE`` bytes is refused at once (only that much is ever read);
- a NUL byte is refused: a text export never has one, a spreadsheet or UTF-16 file does;
- charset ``auto``: the rule in ``connectors/charset.py`` (UTF-8; Windows-1252 only for a
  file with no valid multi-byte UTF-8 anywhere; in a UTF-8 file a byte that is not UTF-8 is
  refused naming its line, column and file offset). Until the reader says rows may be
  skipped (``rows_skippable``) such a line stops the file; after that it is kept in
  ``bad`` for the connector to turn the row it belongs to into a ``Rejected``
  (``take_bad``), the line read with U+FFFD in place of the bad bytes;
- a declared charset (``utf-8``, ``iso-8859-1``, ``cp1252``) is used strictly.

Line endings are dropped: ``\\n``, ``\\r\\n`` and the ``\\r\\r\\n`` some Windows exports write.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import BinaryIO

from connectors.charset import BadByte, FileCharset, NotText, not_in
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
        self.declared = None if encoding == "auto" else encoding
        self.charset = FileCharset(stream)
        self.rows_skippable = False
        self.bad: dict[int, str] = {}  # line number -> what is wrong, until taken

    def use(self, encoding: str) -> None:
        """Read the following lines in ``encoding`` (``auto`` keeps the current choice)."""
        if encoding != "auto":
            self.declared = encoding

    def take_bad(self, first: int, last: int) -> tuple[int, str] | None:
        """The first bad line from ``first`` to ``last`` and its message (forgetting those)."""
        found = None
        for number in range(first, last + 1):
            message = self.bad.pop(number, None)
            if message is not None and found is None:
                found = (number, message)
        return found

    def __iter__(self) -> Iterator[tuple[int, str]]:
        for number, text in self._read():
            yield number, text.rstrip("\r\n")

    def texts(self) -> Iterator[str]:
        """Each line's text with its line ending kept (for ``csv.reader``)."""
        for _, text in self._read():
            yield text

    def _read(self) -> Iterator[tuple[int, str]]:
        readline = self.stream.readline
        name, hint, charset = self.name, self.hint, self.charset
        number = offset = 0
        while raw := readline(MAX_LINE):
            number += 1
            start, offset = offset, offset + len(raw)
            if len(raw) == MAX_LINE and not raw.endswith(b"\n"):
                raise _error(name, number, f"the line is longer than {MAX_LINE:,} bytes", hint)
            if b"\x00" in raw:
                column = raw.index(b"\x00") + 1
                what = f"a NUL byte at column {column}; this is not a text file"
                raise _error(name, number, what, hint)
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
                start += len(codecs.BOM_UTF8)
                charset.saw_bom()
            if self.declared is None and (charset.utf8 or raw.isascii()):
                try:  # the common case, kept fast: nothing left to learn from this line
                    yield number, raw.decode("utf-8")
                    continue
                except UnicodeDecodeError:
                    pass
            yield number, self._decode(raw, number, start)

    def _decode(self, raw: bytes, number: int, start: int) -> str:
        if self.declared is not None:
            try:
                return raw.decode(self.declared)
            except UnicodeDecodeError as exc:
                what = not_in(self.declared, raw[exc.start], exc.start + 1)
                raise _error(self.name, number, what, self.hint) from None
        try:
            return self.charset.decode(raw, number, start)
        except BadByte as bad:
            if not self.rows_skippable or bad.line != number:
                raise _error(self.name, bad.line, bad.message, self.hint) from None
            self.bad[number] = bad.message
            return raw.decode("utf-8", "replace")
        except NotText as exc:
            raise _error(self.name, exc.line, exc.message, self.hint) from None


def _error(name: str, number: int, what: str, hint: str) -> ImportFormatError:
    return ImportFormatError(f"{name} line {number}: {what}", hint=hint)


def show(value: str) -> str:
    """A value for a message: control characters escaped, long values cut."""
    shown = value if value.isprintable() else repr(value)[1:-1]
    return shown if len(shown) <= 40 else shown[:40] + "..."
