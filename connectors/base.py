"""The connector interface: Record, Connector, and helpers every format shares."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, ClassVar

from connectors.charset import BadByte, NotText, decode_whole
from pds.errors import ImportFormatError


@dataclass(frozen=True, slots=True)
class Record:
    """One normalized record as a connector produces it.

    ``identity`` is the source's own id for the record where the format has one (OFX FITID,
    a CAMT entry reference): two records with the same identity in the same account are the
    same record. Where it is None, the importer tells a re-import from a genuine repeat by
    counting identical payloads within the file. ``where`` names the line or element the
    record came from, for messages.
    """

    category: str
    occurred_at: str
    payload: dict[str, Any]
    identity: str | None = None
    where: str = field(default="", compare=False)


SKIP_BAD_HINT = "Fix or remove that row, or pass --skip-bad to leave it out."


@dataclass(frozen=True, slots=True)
class Rejected:
    """A bad row or element the connector stepped over: where it is and what is wrong.

    ``where`` has the shape of ``Record.where`` ("line 12", "element Ntry at line 40");
    ``message`` says what is wrong, without the file name. The importer turns it into
    ``"<file> <where>: <message>"``: an error without ``--skip-bad``, a listed row with it.
    """

    where: str
    message: str


class Connector:
    """Base class for a file format. Subclasses set the class attributes and two methods.

    ``parse`` yields a ``Record`` per good row and a ``Rejected`` for a bad row or element
    it can step over: one that is self-contained, so the rest of the file is still sound
    (an unparseable amount, a bad date, one malformed entry). It raises
    ``ImportFormatError`` for what makes the file unreadable: not the format, bad encoding,
    broken XML structure, a cap exceeded, a header missing. Without ``--skip-bad`` the
    importer refuses the file at the first ``Rejected``, with the same message.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    extensions: ClassVar[tuple[str, ...]]
    categories: ClassVar[tuple[str, ...]]

    def detect(self, head: bytes, filename: str) -> bool:
        """True if ``head`` (the file's first bytes) and ``filename`` look like this format."""
        raise NotImplementedError

    def parse(self, stream: BinaryIO, filename: str) -> Iterator[Record | Rejected]:
        """Yield the file's records and rejected rows; raise ImportFormatError naming the
        line or element for a file that cannot be read."""
        raise NotImplementedError


def rejected_message(filename: str, rejected: Rejected) -> str:
    """``"<file> <where>: <message>"``, the file named by its base name."""
    name = os.path.basename(filename)
    place = f"{name} {rejected.where}" if rejected.where else name
    return f"{place}: {rejected.message}"


def rejected_error(filename: str, rejected: Rejected) -> ImportFormatError:
    """The error a ``Rejected`` row stops an import with when ``--skip-bad`` is not given."""
    return ImportFormatError(rejected_message(filename, rejected), hint=SKIP_BAD_HINT)


def strict(items: Iterable[Record | Rejected], filename: str) -> Iterator[Record]:
    """The records, raising at the first ``Rejected`` as an import without --skip-bad does."""
    for item in items:
        if isinstance(item, Rejected):
            raise rejected_error(filename, item)
        yield item


def refuse_nul(data: bytes, name: str, hint: str, line: int = 1, start: int = 0) -> None:
    """Refuse text holding a NUL byte from offset ``start`` on, naming its line and byte
    column (``data`` starts at ``line``), in the words ``connectors/textlines.py`` uses: a
    text export never holds one, a spreadsheet or UTF-16 file does."""
    at = data.find(b"\x00", start)
    if at < 0:
        return
    number = line + data.count(b"\n", 0, at)
    column = at - (data.rfind(b"\n", 0, at) + 1) + 1
    raise ImportFormatError(
        f"{name} line {number}: a NUL byte at column {column}; this is not a text file",
        hint=hint,
    )


def decode_text(data: bytes, filename: str, declared: str | None = None) -> str:
    """A whole file's bytes as text by the rule in ``connectors/charset.py``: UTF-8 (BOM
    stripped) if they are valid UTF-8, else the declared charset, else Windows-1252 if the
    file holds no valid multi-byte UTF-8; a UTF-8 file with a byte that is not UTF-8 is
    refused naming its line, column and file offset.

    Valid UTF-8 comes first even over a declared charset: real files lie in their headers
    (a Banco do Brasil OFX declares CHARSET:1252 over UTF-8 bytes). A declared charset that
    Python does not know is ignored rather than trusted.
    """
    try:
        return decode_whole(data, declared)
    except BadByte as bad:
        raise ImportFormatError(
            f"{filename} line {bad.line}: {bad.message}",
            hint="Fix or remove that byte, or export the file again as UTF-8.",
        ) from None
    except NotText as exc:
        raise ImportFormatError(
            f"{filename} line {exc.line}: {exc.message}",
            hint="Check that this is the statement file the bank sent, not a PDF or spreadsheet.",
        ) from None
