"""Safe, streaming XML for connectors: defusedxml's iterparse with one kind of error.

Every XML connector reads through ``iterparse`` here and nowhere else. It is built on
``defusedxml.ElementTree`` with entity declarations and external references always refused;
a document type declaration is refused too unless the format has one (Apple Health's
``export.xml`` carries an internal DTD subset of ATTLIST/ELEMENT declarations, which is
allowed with ``allow_dtd=True``; an ENTITY in it is still refused, and so is a DOCTYPE that
names an external DTD, although expat would not fetch it anyway). Nothing is ever fetched.

Every failure, from a mismatched tag to a billion-laughs bomb, becomes an
``ImportFormatError`` whose message names the file and the line, and says in plain words
what was refused. ``max_bytes`` caps how much of the stream is read, with a message that
says so; ``max_run`` refuses a run of more bytes than that without a ``<`` or ``>`` (one giant
text node or attribute), before expat buffers it whole. Callers stream: they handle each
element at its ``end`` event and clear it (and drop it from its parent), so memory stays
flat however large the file.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from typing import Any, BinaryIO
from xml.etree.ElementTree import Element, ParseError, TreeBuilder
from xml.parsers.expat import ErrorString

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.common import DefusedXmlException, NotSupportedError
from defusedxml.ElementTree import DefusedXMLParser
from defusedxml.ElementTree import iterparse as defused_iterparse

from pds.errors import ImportFormatError

CHUNK = 64 * 1024
HINT = "Export the file again from its source; pds reads only plain, self-contained XML."


class ExternalDtdForbidden(DefusedXmlException):
    """A DOCTYPE that names an external DTD (SYSTEM or PUBLIC identifier)."""

    def __init__(self, sysid: str | None, pubid: str | None) -> None:
        super().__init__()
        self.sysid = sysid
        self.pubid = pubid


class _Parser(DefusedXMLParser):
    """defusedxml's parser; with a DTD allowed, an external DTD identifier is still refused.

    Only attributes written in the document are reported: a DTD's ``<!ATTLIST ... "default">``
    would otherwise add its default value to every element (defusedxml allows ATTLIST), so
    a small file could inflate into huge records.
    """

    def __init__(self, allow_dtd: bool) -> None:
        super().__init__(target=TreeBuilder(), forbid_dtd=not allow_dtd)
        self.parser.specified_attributes = True
        if allow_dtd:
            self.parser.StartDoctypeDeclHandler = self._external_dtd

    def _external_dtd(self, name: str, sysid: str | None, pubid: str | None, internal: int) -> None:
        if sysid or pubid:
            raise ExternalDtdForbidden(sysid, pubid)


class _Capped:
    """A read-only view of a stream that refuses to read past ``limit`` bytes."""

    def __init__(self, raw: BinaryIO, limit: int | None, name: str) -> None:
        self._raw = raw
        self._left = limit
        self._limit = limit
        self._name = name

    def read(self, n: int = CHUNK) -> bytes:
        data = self._raw.read(CHUNK if n is None or n < 0 else n)
        if self._left is not None:
            self._left -= len(data)
            if self._left < 0:
                raise ImportFormatError(
                    f"{self._name}: the file is larger than the {self._limit:,} bytes pds "
                    "reads from this format",
                    hint="Split the export into smaller files, or check it is the right file.",
                )
        return data


class _RunCap:
    """A stream view that refuses more than ``limit`` bytes without a ``<`` or ``>``."""

    def __init__(self, raw: _Capped, limit: int, name: str) -> None:
        self._raw = raw
        self._limit = limit
        self._name = name
        self._run = 0
        self._offset = 0

    def read(self, n: int = CHUNK) -> bytes:
        data = self._raw.read(n)
        first = min((i for i in (data.find(b"<"), data.find(b">")) if i >= 0), default=-1)
        if first < 0:
            self._check(self._run + len(data), self._offset + len(data))
        else:
            self._check(self._run + first, self._offset + first)
            self._run = len(data) - 1 - max(data.rfind(b"<"), data.rfind(b">"))
        self._offset += len(data)
        return data

    def _check(self, run: int, position: int) -> None:
        self._run = run
        if run > self._limit:
            raise ImportFormatError(
                f"{self._name}: more than {self._limit:,} bytes of text without an XML tag "
                f"(by byte {position:,})",
                hint=HINT,
            )


def iterparse(
    stream: BinaryIO,
    filename: str,
    events: tuple[str, ...] = ("end",),
    allow_dtd: bool = False,
    max_bytes: int | None = None,
    max_run: int | None = None,
) -> XmlEvents:
    """``(event, element)`` pairs like ElementTree's iterparse, safely (see the module doc).

    ``events`` may hold "start" and "end". The result's ``line`` is the line where the
    current element starts. Iterating raises ImportFormatError naming ``filename`` and the
    line for any malformed or hostile input, when more than ``max_bytes`` would be read, and
    at a run of more than ``max_run`` bytes without a tag bracket.
    """
    return XmlEvents(stream, filename, events, allow_dtd, max_bytes, max_run)


class XmlEvents:
    """The iterator ``iterparse`` returns; ``line`` is the current element's start line."""

    def __init__(
        self,
        stream: BinaryIO,
        filename: str,
        events: tuple[str, ...],
        allow_dtd: bool,
        max_bytes: int | None,
        max_run: int | None = None,
    ) -> None:
        unknown = set(events) - {"start", "end"}
        if unknown:
            raise ValueError(f"unsupported events: {sorted(unknown)}")
        self.name = os.path.basename(filename)
        self.line = 0
        self._parser = _Parser(allow_dtd)
        source = _Capped(stream, max_bytes, self.name)
        if max_run is not None:
            source = _RunCap(source, max_run, self.name)
        self._events = defused_iterparse(source, events, parser=self._parser)
        self._lines: deque[int] = deque()
        self._track_lines("start" in events, "end" in events)
        self._iter = self._run()

    def _track_lines(self, on_start: bool, on_end: bool) -> None:
        """Queue each event's start line in step with the events the parser queues."""
        expat = self._parser.parser
        inner_start, inner_end = expat.StartElementHandler, expat.EndElementHandler
        starts: list[int] = []
        lines = self._lines

        def start(*args: Any) -> None:
            line = expat.CurrentLineNumber
            starts.append(line)
            inner_start(*args)
            if on_start:
                lines.append(line)

        def end(*args: Any) -> None:
            line = starts.pop()
            inner_end(*args)
            if on_end:
                lines.append(line)

        expat.StartElementHandler, expat.EndElementHandler = start, end

    def __iter__(self) -> XmlEvents:
        return self

    def __next__(self) -> tuple[str, Element]:
        return next(self._iter)

    def _run(self) -> Iterator[tuple[str, Element]]:
        try:
            for item in self._events:
                self.line = self._lines.popleft()
                yield item
        except ParseError as exc:
            line, _ = exc.position
            raise ImportFormatError(
                f"{self.name} line {line}: not well-formed XML ({ErrorString(exc.code)})",
                hint=HINT,
            ) from None
        except DefusedXmlException as exc:
            line = self._parser.parser.CurrentLineNumber
            raise ImportFormatError(f"{self.name} line {line}: {refusal(exc)}", hint=HINT) from None
        except ImportFormatError:
            raise
        except (LookupError, ValueError) as exc:  # an encoding expat cannot read, e.g. "TF-8"
            line = self._parser.parser.CurrentLineNumber
            raise ImportFormatError(
                f"{self.name} line {line}: the XML cannot be read ({exc})", hint=HINT
            ) from None


def refusal(exc: DefusedXmlException) -> str:
    """What was refused, in plain words."""
    if isinstance(exc, EntitiesForbidden):
        return (
            f"entity declarations are refused (<!ENTITY {exc.name}>); pds never expands "
            "XML entities"
        )
    if isinstance(exc, ExternalDtdForbidden):
        return (
            f'an external DTD ("{exc.sysid or exc.pubid}") is refused; pds never fetches '
            "anything a file points to"
        )
    if isinstance(exc, DTDForbidden):
        return "document type declarations (<!DOCTYPE>) are refused in this format"
    if isinstance(exc, ExternalReferenceForbidden):
        return (
            f'external entity references are refused ("{exc.sysid}"); pds never fetches '
            "anything a file points to"
        )
    if isinstance(exc, NotSupportedError):
        return "this XML feature is not supported"
    return "refused as unsafe XML"  # pragma: no cover - defusedxml has no other kinds


def local(tag: str) -> tuple[str, str]:
    """``"{uri}name"`` -> ``("uri", "name")``; a tag with no namespace -> ``("", name)``."""
    if tag[:1] == "{":
        uri, _, name = tag[1:].partition("}")
        return uri, name
    return "", tag
