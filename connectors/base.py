"""The connector interface: Record, Connector, and helpers every format shares."""

from __future__ import annotations

import codecs
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, ClassVar

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


class Connector:
    """Base class for a file format. Subclasses set the class attributes and two methods."""

    name: ClassVar[str]
    title: ClassVar[str]
    extensions: ClassVar[tuple[str, ...]]
    categories: ClassVar[tuple[str, ...]]

    def detect(self, head: bytes, filename: str) -> bool:
        """True if ``head`` (the file's first bytes) and ``filename`` look like this format."""
        raise NotImplementedError

    def parse(self, stream: BinaryIO, filename: str) -> Iterator[Record]:
        """Yield the file's records; raise ImportFormatError naming the line or element."""
        raise NotImplementedError


def decode_text(data: bytes, filename: str, declared: str | None = None) -> str:
    """Decode bytes as UTF-8 (BOM stripped) if they are valid UTF-8, else as the declared
    charset, else as cp1252.

    Valid UTF-8 comes first even over a declared charset: real files lie in their headers
    (a Banco do Brasil OFX declares CHARSET:1252 over UTF-8 bytes), while Latin-1 text with
    any accented letter is practically never valid UTF-8. cp1252 is a superset of
    ISO-8859-1's printable range, so Latin-1 files read right. A declared charset that
    Python does not know is ignored rather than trusted.
    """
    candidates = ["utf-8-sig"]
    if declared:
        with contextlib.suppress(LookupError, ValueError):
            info = codecs.lookup(declared)
            if info._is_text_encoding:  # not base64, hex, zlib...
                candidates.append(info.name)
    candidates.append("cp1252")
    for enc in candidates:
        try:
            return data.decode(enc)
        except (UnicodeError, LookupError):
            continue
    raise ImportFormatError(
        f"{filename}: the file is neither UTF-8 nor Windows-1252 text",
        hint="Check that this is the statement file the bank sent, not a PDF or spreadsheet.",
    )
