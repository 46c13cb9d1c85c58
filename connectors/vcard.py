"""vCard 2.1, 3.0 and 4.0 address books (``.vcf``): one ``contacts`` record per card.

Parsing is vobject's. The file is read one line at a time and handed to vobject one card
at a time, so memory holds one card, never the whole book. Before a card reaches vobject
this module does three things vobject does not:

- line endings are made plain ``\\n`` (iOS writes CR CR LF, RFC 6350 examples use LF);
- a vCard 2.1 quoted-printable value's soft line breaks (a line ending in ``=``, continued
  on a line that need not start with a space) are joined; vobject then decodes the value;
- a quoted-printable value that is not valid in its own charset has the bad bytes replaced
  by U+FFFD (re-encoded), rather than the card refused;
- binary properties (PHOTO, LOGO, SOUND, KEY with inline data) are dropped with their folded
  lines: pds keeps no photos, and a 45 KB base64 photo is most of a card's bytes. Blank
  lines inside a card (Android ends base64 with one) are dropped too.

Charset: the rule in ``connectors/charset.py``, checked line by line as the file is read:
UTF-8; a property with a ``CHARSET=`` parameter (vCard 2.1) whose bytes are not UTF-8 is
read in that charset; a file with no valid multi-byte UTF-8 anywhere is Windows-1252; in a
UTF-8 file, a card holding a byte that is not UTF-8 is a ``Rejected`` naming the line,
column and file offset (``--skip-bad`` leaves that card out, the others keep their
``é``). vobject can
fail on hostile input with many exception types; any failure inside it for one card is
yielded as a ``Rejected`` naming the card and its first line (the cards are delimited before
vobject sees them, so the next card is still sound): it stops the file unless
``--skip-bad`` leaves the card out.

Mapping (strings stripped; TYPE labels lower case, from ``TYPE=a,b`` and 2.1 bare params):
FN -> full_name; N -> name (family, given, additional, prefix, suffix); NICKNAME; EMAIL ->
emails; TEL -> phones (a ``tel:`` URI keeps its text); ADR -> addresses; the first ORG ->
org (its units, in order); TITLE; BDAY -> birthday (``YYYY-MM-DD``, or ``--MM-DD`` without
a year); URL -> urls; the first NOTE; UID. ``occurred_at`` is the date of REV where the card
has one, else the day of the import. ``identity`` is the UID where there is one.
"""

from __future__ import annotations

import binascii
import os
import quopri
import re
from collections.abc import Iterator
from datetime import date
from typing import Any, BinaryIO, ClassVar

import vobject

from connectors.base import Connector, Record, Rejected, refuse_nul
from connectors.charset import LEGACY, BadByte, FileCharset, NotText, declared_codec
from pds import clock
from pds.errors import ImportFormatError

HINT = "Export the address book again as vCard (.vcf)."
MAX_LINE = 8 << 20  # bytes in one physical line
MAX_CARD = 4 << 20  # bytes kept for one card (photos are not kept)
BINARY = frozenset({"PHOTO", "LOGO", "SOUND", "KEY"})
_BIRTHDAY = re.compile(r"(\d{4}|--)-?(\d{2})-?(\d{2})(?:T.*)?\Z", re.ASCII)
_REV = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})", re.ASCII)


class VcardConnector(Connector):
    name = "vcard"
    title = "vCard address book (2.1, 3.0, 4.0)"
    extensions: ClassVar[tuple[str, ...]] = (".vcf", ".vcard")
    categories: ClassVar[tuple[str, ...]] = ("contacts",)

    def detect(self, head: bytes, filename: str) -> bool:
        """The file starts (after a BOM and blank lines) with BEGIN:VCARD."""
        start = head.removeprefix(b"\xef\xbb\xbf").lstrip()
        return start[:11].upper() == b"BEGIN:VCARD"

    def parse(self, stream: BinaryIO, filename: str) -> Iterator[Record | Rejected]:
        name = os.path.basename(filename)
        number = 0
        charset = FileCharset(stream)
        for first_line, lines, bad in _cards(stream, name, charset):
            number += 1
            where = f"card {number} (line {first_line})"
            if bad is not None:
                yield Rejected(f"card {number} line {bad.line}", bad.message)
                continue
            card = _read_card(lines, where, charset)
            yield card if isinstance(card, Rejected) else _record(card, where)
        if number == 0:
            raise ImportFormatError(f"{name}: no BEGIN:VCARD ... END:VCARD card found", hint=HINT)


def _physical_lines(stream: BinaryIO, name: str) -> Iterator[tuple[int, int, bytes]]:
    """(line number, offset of the line in the file, the line without its ending)."""
    number = offset = 0
    while line := stream.readline(MAX_LINE + 1):
        number += 1
        if len(line) > MAX_LINE:
            raise ImportFormatError(
                f"{name} line {number}: longer than {MAX_LINE:,} bytes", hint=HINT
            )
        refuse_nul(line, name, HINT, number)
        yield number, offset, line.rstrip(b"\r\n")
        offset += len(line)


def _cards(
    stream: BinaryIO, name: str, charset: FileCharset
) -> Iterator[tuple[int, list[bytes], BadByte | None]]:
    """Each card as (its first line number, its logical lines, its first byte that is not
    UTF-8 in a UTF-8 file or None).

    Folded lines stay as they are (vobject unfolds them); a quoted-printable soft break
    joins the next line to the value. Pieces are collected in lists and joined once, so a
    hostile card of many short lines costs linear time. Each physical line is checked
    against the charset rule as it is read (in its property's ``CHARSET=``, if any).
    """
    card: list[list[bytes]] | None = None
    start = size = 0
    skipping = False  # inside the folded lines of a dropped binary property
    qp = False  # the current property is quoted-printable
    declared: str | None = None  # the current property's CHARSET=
    bad: BadByte | None = None
    for number, offset, line in _physical_lines(stream, name):
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line, offset = line[3:], offset + 3
            charset.saw_bom()
        if line[:1] not in (b" ", b"\t") and not (qp and card and card[-1][-1].endswith(b"=")):
            declared = _declared(line)  # a new property
        if not line.isascii() and not skipping:
            try:
                charset.decode(line, number, offset, declared)
            except BadByte as exc:
                if exc.line != number or card is None:  # the file is UTF-8 after all
                    raise ImportFormatError(f"{name} line {exc.line}: {exc.message}", hint=HINT)
                bad = bad or exc
            except NotText as exc:
                raise ImportFormatError(f"{name} line {exc.line}: {exc.message}", hint=HINT)
        upper = line.strip().upper()
        if card is None:
            if upper == b"BEGIN:VCARD":
                card, start, size, skipping, qp = [[line]], number, len(line), False, False
            elif upper:
                raise ImportFormatError(
                    f'{name} line {number}: "{_show(line)}" is outside a BEGIN:VCARD card',
                    hint=HINT,
                )
            continue
        if not upper:
            qp = False  # a blank line ends a quoted-printable value
            continue
        if line[:1] in (b" ", b"\t"):
            if skipping:
                continue
            card[-1].append(b"\n" + line)
        elif qp and card[-1][-1].endswith(b"=") and upper != b"END:VCARD":
            card[-1][-1] = card[-1][-1][:-1]
            card[-1].append(line)
        elif _property(line) in BINARY:
            skipping, qp = True, False
            continue
        else:
            skipping = False
            qp = b"QUOTED-PRINTABLE" in line.split(b":", 1)[0].upper()
            card.append([line])
        size += len(line)
        if size > MAX_CARD:
            raise ImportFormatError(
                f"{name} card starting at line {start}: more than {MAX_CARD:,} bytes", hint=HINT
            )
        if upper == b"END:VCARD":
            yield start, [_repair_qp(b"".join(parts)) for parts in card], bad
            card, bad = None, None
    if card is not None:
        raise ImportFormatError(
            f"{name} card starting at line {start}: no END:VCARD; the file looks truncated",
            hint=HINT,
        )


def _declared(line: bytes) -> str | None:
    """The text charset a content line's ``CHARSET=`` parameter names, if any."""
    head = line.split(b":", 1)[0]
    match = re.search(rb";CHARSET=([A-Za-z0-9._-]+)", head, re.IGNORECASE)
    return declared_codec(match.group(1).decode("ascii")) if match else None


def _property(line: bytes) -> str:
    """The property name of a content line, without its group (``item1.EMAIL`` -> EMAIL)."""
    head = re.split(rb"[;:]", line, maxsplit=1)[0]
    return head.rsplit(b".", 1)[-1].strip().upper().decode("latin-1")


def _repair_qp(line: bytes) -> bytes:
    """A quoted-printable value whose bytes are not valid in their charset, re-encoded with
    U+FFFD in place of the bad bytes (an Android card ends a UTF-8 value with ``=80``)."""
    head, sep, value = line.partition(b":")
    if not sep or b"QUOTED-PRINTABLE" not in head.upper():
        return line
    match = re.search(rb"CHARSET=([A-Za-z0-9._-]+)", head, re.IGNORECASE)
    charset = match.group(1).decode("ascii") if match else "utf-8"
    raw = quopri.decodestring(value)
    try:
        raw.decode(charset)
    except UnicodeDecodeError:
        text = raw.decode(charset, errors="replace").encode(charset)
        value = binascii.b2a_qp(text, quotetabs=True).replace(b"=\n", b"")
    except LookupError:
        pass  # vobject reports the unknown charset
    return head + sep + value


def _read_card(lines: list[bytes], where: str, charset: FileCharset) -> Any:
    """The vobject card, or a Rejected when vobject cannot read it."""
    text = "".join(_line_text(line, charset) + "\n" for line in lines)
    try:
        card = vobject.readOne(text, ignoreUnreadable=False)
    except Exception as exc:  # vobject raises many types on hostile input
        return Rejected(where, f"not a readable vCard ({_reason(exc)})")
    for child in card.getChildren():
        if isinstance(child, vobject.base.Component):  # BEGIN:EMAIL ... END:EMAIL in a card
            shown = child.name if child.name.isprintable() else repr(child.name)
            return Rejected(where, f"not a readable vCard (BEGIN:{shown[:40]} inside a card)")
    return card


def _line_text(line: bytes, charset: FileCharset) -> str:
    """A logical line already checked by ``_cards``: UTF-8, else its ``CHARSET=``, else the
    file's legacy charset."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode(_declared(line) or charset.legacy or LEGACY, "replace")


def _record(card: Any, where: str) -> Record:
    payload = {
        "full_name": _text(card, "fn"),
        "name": _name(card),
        "nickname": _text(card, "nickname"),
        "emails": _typed(card, "email"),
        "phones": _typed(card, "tel"),
        "addresses": _addresses(card),
        "org": _org(card),
        "title": _text(card, "title"),
        "birthday": _birthday(_text(card, "bday")),
        "urls": [u for u in (_clean(p.value) for p in _all(card, "url")) if u],
        "note": _text(card, "note"),
        "uid": _text(card, "uid"),
    }
    return Record("contacts", _occurred(_text(card, "rev")), payload, payload["uid"], where)


def _all(card: Any, key: str) -> list[Any]:
    return card.contents.get(key, [])


def _clean(value: Any) -> str:
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    return str(value).replace("\\:", ":").strip()


def _text(card: Any, key: str) -> str | None:
    props = _all(card, key)
    return (_clean(props[0].value) or None) if props else None


def _types(prop: Any) -> list[str]:
    raw = list(prop.params.get("TYPE", [])) + list(prop.singletonparams)
    found: list[str] = []
    for item in raw:
        for part in str(item).split(","):
            label = part.strip().lower()
            if label and label not in found:
                found.append(label)
    return found


def _typed(card: Any, key: str) -> list[dict[str, Any]]:
    out = []
    for prop in _all(card, key):
        value = _clean(prop.value)
        if value:
            out.append({"value": value, "types": _types(prop)})
    return out


def _name(card: Any) -> dict[str, str] | None:
    props = _all(card, "n")
    if not props or isinstance(props[0].value, str):
        return None
    n = props[0].value
    parts = {
        "family": _clean(n.family),
        "given": _clean(n.given),
        "additional": _clean(n.additional),
        "prefix": _clean(n.prefix),
        "suffix": _clean(n.suffix),
    }
    return parts if any(parts.values()) else None


def _addresses(card: Any) -> list[dict[str, Any]]:
    out = []
    for prop in _all(card, "adr"):
        a = prop.value
        if isinstance(a, str):
            continue
        parts = {
            "po_box": _clean(a.box),
            "extended": _clean(a.extended),
            "street": _clean(a.street),
            "locality": _clean(a.city),
            "region": _clean(a.region),
            "postal_code": _clean(a.code),
            "country": _clean(a.country),
        }
        if any(parts.values()):
            out.append({"types": _types(prop), **parts})
    return out


def _org(card: Any) -> list[str]:
    props = _all(card, "org")
    if not props:
        return []
    value = props[0].value
    units = value if isinstance(value, list) else [value]
    return [u for u in (_clean(x) for x in units) if u]


def _birthday(raw: str | None) -> str | None:
    """BDAY as ``YYYY-MM-DD`` or ``--MM-DD``; a value in another form is kept as written."""
    if raw is None:
        return None
    match = _BIRTHDAY.match(raw)
    if match is None:
        return raw
    year, month, day = match.groups()
    return f"{year}-{month}-{day}" if year != "--" else f"--{month}-{day}"


def _occurred(rev: str | None) -> str:
    match = _REV.match(rev or "")
    if match:
        try:
            return date(*(int(g) for g in match.groups())).isoformat()
        except ValueError:
            pass  # a REV that is no date: fall back to today
    return clock.utcnow().date().isoformat()


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 100 else text[:100] + "..."


def _show(line: bytes) -> str:
    text = line.decode("utf-8", errors="replace")
    shown = text if text.isprintable() else repr(text)[1:-1]
    return shown if len(shown) <= 40 else shown[:40] + "..."
