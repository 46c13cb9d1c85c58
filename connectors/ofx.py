"""OFX / QFX bank and credit-card statements: OFX 1.x (SGML) and 2.x (XML), one reader for both.

Every file is read with a small SGML tokenizer, never an XML parser: 1.x leaves are unclosed
(``<TRNAMT>-5.50``), real 2.x files mix in unclosed leaves too, and a tokenizer expands no
DTD or external entity. A leaf ends at the next tag; an element with text, or one of
``LEAVES``, is a leaf; a closing tag closes everything opened after its element. Text is
stripped, CDATA is taken literally, and the character entities ``&lt; &gt; &amp; &quot;
&apos; &nbsp; &#N; &#xN;`` are decoded once (``&amp;lt;`` becomes ``&lt;``).

Charset: ``decode_text`` with the header's charset (1.x ``ENCODING``/``CHARSET``, 2.x the XML
declaration), so valid UTF-8 wins over a header that says 1252.

Mapping of one ``STMTTRN`` inside a bank (``STMTRS``) or credit-card (``CCSTMTRS``) statement:

- date: the first 8 digits of DTPOSTED (the bank's own calendar date, zone ignored);
- amount: TRNAMT with a leading "+" dropped and a decimal comma made a point;
- currency: CURRENCY/CURSYM if the transaction has it (its amount is then in that currency),
  else the statement's CURDEF (ORIGCURRENCY means TRNAMT is already in CURDEF);
- counterparty: NAME, else PAYEE/NAME (OFX defines NAME as the payee), else None;
- description: MEMO, else the counterparty, else "" (MEMO is the bank's full text; NAME is
  often a 32-character cut of it);
- reference: CHECKNUM, else REFNUM, else FITID;
- type: TRNTYPE; account: the statement's ACCTID; balance: None (OFX gives only the
  statement's LEDGERBAL, not a running balance).

``identity`` is ``ACCTID:FITID``: FITID is the bank's id for the transaction, unique within
one account only. Investment statements (``INVSTMTRS``) are refused, not half read.

Limits: a file is read whole, so it is capped at ``MAX_BYTES``; elements nested more than
``MAX_DEPTH`` deep are refused (real statements nest about 8 deep), and so are a leaf value
longer than ``MAX_VALUE`` characters and a NUL byte from ``<OFX>`` to the trailing padding
(the header before it is only searched for a charset).
"""

from __future__ import annotations

import codecs
import os
import re
from collections import Counter
from collections.abc import Iterator
from datetime import date
from typing import Any, BinaryIO, ClassVar

from connectors.base import Connector, Record, Rejected, decode_text, refuse_nul
from pds.errors import ImportFormatError

MAX_BYTES = 64 << 20  # a statement is kilobytes; read whole, so capped
MAX_DEPTH = 64  # open elements at once
MAX_VALUE = 64 << 10  # characters in one leaf value (OFX caps MEMO at 255, NAME at 32)
CHUNK = 1 << 20
HINT = "Download the statement again from your bank as OFX, QFX or Quicken Web Connect."
STATEMENTS = frozenset({"STMTRS", "CCSTMTRS"})
ACCOUNTS = frozenset({"BANKACCTFROM", "CCACCTFROM"})
TXN_PARTS = frozenset({"PAYEE", "CURRENCY", "ORIGCURRENCY", "BANKACCTTO", "CCACCTTO"})
CONTEXTS = STATEMENTS | ACCOUNTS | TXN_PARTS | {"STMTTRN"}
# fmt: off
# Aggregates that are never taken for a leaf, even with stray text in them.
AGGREGATES = CONTEXTS | {
    "OFX", "SIGNONMSGSRSV1", "SONRS", "STATUS", "FI", "BANKMSGSRSV1", "STMTTRNRS",
    "CREDITCARDMSGSRSV1", "CCSTMTTRNRS", "BANKTRANLIST", "LEDGERBAL", "AVAILBAL", "BALLIST",
    "BAL",
}
# Leaves that may be empty (<MEMO><NAME>x): without this list an empty leaf would look like
# an aggregate holding the next element.
LEAVES = frozenset({
    "TRNTYPE", "DTPOSTED", "DTUSER", "DTAVAIL", "TRNAMT", "FITID", "CORRECTFITID",
    "CORRECTACTION", "SRVRTID", "CHECKNUM", "REFNUM", "SIC", "PAYEEID", "NAME", "EXTDNAME",
    "MEMO", "INV401KSOURCE", "CURDEF", "CURRATE", "CURSYM", "ACCTID", "BANKID", "BRANCHID",
    "ACCTTYPE", "ACCTKEY", "DTSTART", "DTEND", "BALAMT", "DTASOF", "CODE", "SEVERITY",
    "MESSAGE", "DTSERVER", "LANGUAGE", "DTPROFUP", "DTACCTUP", "ORG", "FID", "TRNUID",
    "MKTGINFO", "ADDR1", "ADDR2", "ADDR3", "CITY", "STATE", "POSTALCODE", "COUNTRY", "PHONE",
})
# fmt: on
_TAG = re.compile(r"(/?)([A-Za-z][A-Za-z0-9._:-]*)(?:\s[^<>]*?)?(/?)", re.ASCII)
_OFX_START = re.compile(r"<OFX(?:\s[^<>]*)?>", re.IGNORECASE)
_OFX_START_BYTES = re.compile(rb"<OFX(?:\s[^<>]*)?>", re.IGNORECASE)
_ENTITY = re.compile(r"&(lt|gt|amp|quot|apos|nbsp|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'", "nbsp": "\xa0"}
_AMOUNT = re.compile(r"(-?)(\d*)(?:\.(\d*))?", re.ASCII)
_DATE_TAIL = re.compile(r"(?:\d{2,6}(?:\.\d{1,6})?)?\s*(?:\[[^\]]*\])?", re.ASCII)
_TEXT_CODEC = re.compile(r"cp\d+|iso8859-\d+|ascii|utf-8|mac-[a-z]+|koi8-[a-z]+")
_TAG_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz/!?")
_TRAILING = "\x00\x1a"  # NUL padding and a DOS end-of-file after </OFX> are harmless


class OfxConnector(Connector):
    name = "ofx"
    title = "OFX / QFX bank or credit-card statement"
    extensions: ClassVar[tuple[str, ...]] = (".ofx", ".qfx")
    categories: ClassVar[tuple[str, ...]] = ("transactions",)

    def detect(self, head: bytes, filename: str) -> bool:
        """OFXHEADER first, or an XML declaration with <?OFX or <OFX>, or .ofx/.qfx with <OFX>."""
        start = head.removeprefix(b"\xef\xbb\xbf").lstrip().upper()
        if start.startswith(b"OFXHEADER"):
            return True
        if start.startswith(b"<?XML") and (b"<?OFX" in start or b"<OFX>" in start):
            return True
        extension = os.path.splitext(filename)[1].lower()
        return extension in self.extensions and b"<OFX>" in start

    def parse(self, stream: BinaryIO, filename: str) -> Iterator[Record | Rejected]:
        name = os.path.basename(filename)
        data = _read_capped(stream, name)
        if not data.strip():
            raise ImportFormatError(f"{name}: the file is empty", hint=HINT)
        text = decode_text(data, name, _declared_charset(data))
        start = _OFX_START.search(text)
        if start is None:
            raise ImportFormatError(
                f"{name}: no <OFX> element; this is not an OFX statement", hint=HINT
            )
        body = _OFX_START_BYTES.search(data)
        nul = data.find(b"\x00", body.start() if body else 0)
        if nul >= 0 and data[nul:].lstrip(_TRAILING.encode() + b" \t\r\n\f\v"):
            refuse_nul(data, name, HINT, start=nul)  # not just padding after </OFX>
        yield from _Reader(text, name).records(start.start())


def _read_capped(stream: BinaryIO, name: str) -> bytes:
    """The whole stream, read in chunks (one ``read(MAX_BYTES + 1)`` would allocate the
    whole cap up front, however small the file); refused past ``MAX_BYTES``."""
    chunks: list[bytes] = []
    size = 0
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        if size > MAX_BYTES:
            raise ImportFormatError(
                f"{name}: the statement is larger than {MAX_BYTES:,} bytes, the most pds reads "
                "from one OFX file",
                hint="Download the statement in parts (by month or year) and import each.",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _declared_charset(data: bytes) -> str | None:
    """The 8-bit charset the header names (1.x CHARSET:1252, 2.x encoding="..."), if any.

    Only plain text codecs are passed on: a header naming ``base64`` or ``idna`` would
    otherwise make ``bytes.decode`` fail with something other than UnicodeDecodeError.
    """
    head = data[:2048].decode("latin-1")
    xml = re.search(r"""<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)""", head)
    encoding = re.search(r"^\s*ENCODING:[ \t]*([A-Za-z0-9._-]+)", head, re.MULTILINE)
    charset = re.search(r"^\s*CHARSET:[ \t]*([A-Za-z0-9._-]+)", head, re.MULTILINE)
    if xml:
        value = xml.group(1)
    elif encoding and encoding.group(1).upper() in ("UTF-8", "UNICODE"):
        value = "utf-8"
    elif charset:
        value = charset.group(1)
    else:
        return None
    if value.isdigit():
        value = f"cp{value}"  # CHARSET:1252
    elif value.startswith("8859-"):
        value = f"iso{value}"  # CHARSET:8859-1
    try:
        name = codecs.lookup(value).name
    except LookupError:
        return None  # NONE, or a name Python does not know
    return name if _TEXT_CODEC.fullmatch(name) else None


def _unescape(text: str) -> str:
    return _ENTITY.sub(_entity, text) if "&" in text else text


def _entity(match: re.Match[str]) -> str:
    ref = match.group(1)
    if ref[0] != "#":
        return _NAMED[ref]
    code = int(ref[2:], 16) if ref[1] in "xX" else int(ref[1:])
    if 0 < code < 0x110000 and not 0xD800 <= code < 0xE000:
        return chr(code)
    return match.group(0)


class _Reader:
    """One pass over the tags from ``<OFX>`` on, yielding a Record per closed STMTTRN.

    The stack holds one frame per open element: [tag, text parts, data, offset, has text];
    ``data`` collects the leaves of a STMTTRN (and its number, under "#") or of a statement.
    ``opened`` counts the open frames per tag, so a closing tag is checked without a scan;
    the depth is capped at ``MAX_DEPTH``, so every scan of the stack is short.
    """

    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name
        self.stack: list[list[Any]] = []
        self.opened: Counter[str] = Counter()
        self.count = 0  # STMTTRN elements seen so far
        self.counted = (0, 1)  # (offset, line there): lines are counted on from the last ask

    def records(self, pos: int) -> Iterator[Record | Rejected]:
        text = self.text
        while True:
            lt = text.find("<", pos)
            if lt < 0:
                self._add_text(text[pos:])
                self._check_end(len(text))
                return
            if text[lt + 1 : lt + 2] not in _TAG_START:  # "a < b": SGML reads "<" as text
                self._add_text(text[pos : lt + 1])
                pos = lt + 1
                continue
            self._add_text(text[pos:lt])
            if text.startswith("<![CDATA[", lt):
                end = self._find("]]>", lt, "a CDATA section")
                self._add_part(text[lt + 9 : end])
                pos = end + 3
            elif text.startswith("<!--", lt):
                pos = self._find("-->", lt, "a comment") + 3
            elif text.startswith("<?", lt) or text.startswith("<!", lt):
                pos = self._find(">", lt, "a declaration") + 1
            else:
                gt = self._find(">", lt, "a tag")
                yield from self._tag(text[lt + 1 : gt].strip(), lt)
                pos = gt + 1
                if not self.stack:
                    self._check_end(pos)
                    return

    def _find(self, what: str, start: int, inside: str) -> int:
        end = self.text.find(what, start)
        if end < 0:
            raise self._truncated(f"{inside} in {self._open()}", start)
        return end

    def _open(self) -> str:
        """The innermost open element for messages: "<TAG>", "STMTTRN #N", "<TAG> of STMTTRN #N"."""
        if not self.stack:
            return "the document"
        top = self.stack[-1]
        for frame in reversed(self.stack):
            if frame[0] == "STMTTRN":
                number = f"STMTTRN #{frame[2]['#']}"
                return number if frame is top else f"<{top[0]}> of {number}"
        return f"<{top[0]}>"

    def _truncated(self, inside: str, offset: int) -> ImportFormatError:
        return self._error(f"the file ends inside {inside}; it looks truncated", offset)

    def _add_text(self, chunk: str) -> None:
        if chunk and self.stack:
            self._add_part(_unescape(chunk))

    def _add_part(self, part: str) -> None:
        if self.stack:
            top = self.stack[-1]
            top[1].append(part)
            top[4] = top[4] or bool(part.strip())

    def _tag(self, body: str, offset: int) -> Iterator[Record | Rejected]:
        match = _TAG.fullmatch(body)
        if match is None:
            raise self._error(f'"<{_show(body)}>" is not an OFX tag', offset)
        closing, tag, empty = match.group(1), match.group(2).upper(), match.group(3)
        if closing:
            yield from self._close(tag, offset)
            return
        if self.stack and self._is_leaf(self.stack[-1]):
            yield from self._pop()
        if tag == "INVSTMTRS":
            raise self._error("investment statements (INVSTMTRS) are not supported", offset)
        data: dict[str, str] | None = None
        if tag == "STMTTRN":
            self.count += 1
            data = {"#": str(self.count)}
        elif tag in STATEMENTS:
            data = {}
        if len(self.stack) >= MAX_DEPTH:
            raise self._error(f"elements are nested more than {MAX_DEPTH} deep", offset)
        self.stack.append([tag, [], data, offset, False])
        self.opened[tag] += 1
        if empty:
            yield from self._pop()

    def _close(self, tag: str, offset: int) -> Iterator[Record | Rejected]:
        if not self.opened[tag]:
            raise self._error(f"</{tag}> closes an element that is not open", offset)
        while True:
            closed = self.stack[-1][0]
            yield from self._pop()
            if closed == tag:
                return

    @staticmethod
    def _is_leaf(frame: list[Any]) -> bool:
        if frame[0] in AGGREGATES:
            return False
        return frame[0] in LEAVES or frame[4]

    def _pop(self) -> Iterator[Record | Rejected]:
        frame = self.stack.pop()
        tag = frame[0]
        self.opened[tag] -= 1
        if tag == "STMTTRN":
            yield self._record(frame[2], frame[3])
        elif self._is_leaf(frame):
            value = "".join(frame[1]).strip()
            if len(value) > MAX_VALUE:
                raise self._error(
                    f"the <{tag}> value is longer than {MAX_VALUE:,} characters", frame[3]
                )
            self._leaf(tag, value)

    def _leaf(self, tag: str, value: str) -> None:
        """File a leaf under the innermost STMTTRN, statement or part that holds it."""
        context = next((frame for frame in reversed(self.stack) if frame[0] in CONTEXTS), None)
        if context is None:
            return
        kind = context[0]
        if kind == "STMTTRN":
            context[2][tag] = value
        elif kind in TXN_PARTS:
            transaction = self._nearest(("STMTTRN",))
            if transaction is not None:
                transaction[f"{kind}/{tag}"] = value
        elif (kind in ACCOUNTS and tag == "ACCTID") or (kind in STATEMENTS and tag == "CURDEF"):
            statement = self._nearest(STATEMENTS)
            if statement is not None:
                statement[tag] = value

    def _nearest(self, kinds: tuple[str, ...] | frozenset[str]) -> dict[str, str] | None:
        for frame in reversed(self.stack):
            if frame[0] in kinds:
                return frame[2]
        return None

    def _record(self, txn: dict[str, str], offset: int) -> Record | Rejected:
        """The STMTTRN's Record; a Rejected for a defect of its own (a missing or bad
        leaf, its own bad CURSYM); a statement's defect (no ACCTID, no or bad CURDEF)
        refuses the file."""
        where = f"STMTTRN #{txn['#']}"

        def fail(what: str) -> ImportFormatError:
            return self._error(what, offset, where)

        def reject(what: str) -> Rejected:
            return Rejected(f"{where} (line {self._line(offset)})", what)

        for required in ("DTPOSTED", "TRNAMT", "FITID"):
            if not txn.get(required):
                return reject(f"{required} is missing")
        statement = self._nearest(STATEMENTS)
        if statement is None:
            raise fail("it is not inside a bank (STMTRS) or credit-card (CCSTMTRS) statement")
        account = statement.get("ACCTID")
        if not account:
            raise fail("its statement has no ACCTID in BANKACCTFROM or CCACCTFROM")
        currency = (txn.get("CURRENCY/CURSYM") or statement.get("CURDEF") or "").upper()
        if not (len(currency) == 3 and currency.isascii() and currency.isalpha()):
            if not currency:
                raise fail("its statement has no CURDEF (currency)")
            what = f'currency "{_show(currency)}" is not an ISO 4217 code like USD'
            if txn.get("CURRENCY/CURSYM"):
                return reject(what)
            raise fail(what)
        day = _date(txn["DTPOSTED"])
        if day is None:
            return reject(
                f'DTPOSTED "{_show(txn["DTPOSTED"])}" is not an OFX date like 20240131'
                " or 20240131120000.000[-5:EST]"
            )
        amount = _amount(txn["TRNAMT"])
        if amount is None:
            return reject(f'TRNAMT "{_show(txn["TRNAMT"])}" is not a number')
        counterparty = txn.get("NAME") or txn.get("PAYEE/NAME") or None
        payload = {
            "date": day,
            "amount": amount,
            "currency": currency,
            "description": txn.get("MEMO") or counterparty or "",
            "counterparty": counterparty,
            "balance": None,
            "type": txn.get("TRNTYPE") or None,
            "account": account,
            "reference": txn.get("CHECKNUM") or txn.get("REFNUM") or txn["FITID"],
        }
        return Record("transactions", day, payload, f"{account}:{txn['FITID']}", where)

    def _check_end(self, pos: int) -> None:
        """At the end of the text, or just after </OFX> closed the document."""
        while self.stack and self._is_leaf(self.stack[-1]):
            list(self._pop())
        if self.stack:
            raise self._truncated(self._open(), pos)
        rest = self.text[pos:]
        extra = rest.lstrip(_TRAILING + " \t\r\n\f\v")
        if extra:
            raise self._error("unexpected content after </OFX>", pos + len(rest) - len(extra))

    def _line(self, offset: int) -> int:
        """The line of an offset; offsets are asked for in order, so this counts on from the
        last one (a whole recount each time would be quadratic under --skip-bad)."""
        start, line = self.counted if offset >= self.counted[0] else (0, 1)
        line += self.text.count("\n", start, offset)
        self.counted = (offset, line)
        return line

    def _error(self, what: str, offset: int, where: str = "") -> ImportFormatError:
        line = self._line(offset)
        place = f"{where} (line {line})" if where else f"line {line}"
        return ImportFormatError(f"{self.name} {place}: {what}", hint=HINT)


def _date(raw: str) -> str | None:
    """The calendar date of an OFX datetime (first 8 digits), None if it is not one."""
    text = raw.strip()
    digits = text[:8]
    if not (len(digits) == 8 and digits.isascii() and digits.isdigit()):
        return None
    if not _DATE_TAIL.fullmatch(text[8:]):
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:])).isoformat()
    except ValueError:
        return None


def _amount(raw: str) -> str | None:
    """TRNAMT as a plain decimal: "+1,50" -> "1.50", "-.5" -> "-0.5"; None if not a number."""
    text = raw.strip().removeprefix("+")
    if text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")
    match = _AMOUNT.fullmatch(text)
    if match is None:
        return None
    sign, whole, fraction = match.groups()
    if not whole and not fraction:
        return None
    number = (whole or "0") + (f".{fraction}" if fraction else "")
    return sign + number


def _show(value: str) -> str:
    """A value for a message: control characters escaped, long values cut."""
    shown = value if value.isprintable() else repr(value)[1:-1]
    return shown if len(shown) <= 40 else shown[:40] + "..."
