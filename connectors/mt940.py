"""SWIFT MT940 customer statements: transactions (``:61:``/``:86:``) and balances.

Hand-written tag reader rather than the ``mt-940`` package: that library parses the whole
text at once with regular expressions (no streaming, memory grows with the file), and its
errors do not say which line was wrong. MT940 is simple at the level pds needs: a field
starts with ``:TAG:`` at the start of a line and runs to the next tag; a statement starts at
``:20:`` and ends at a ``-`` line. Read here, one line at a time (``TextLines``: charset,
NUL, line cap), one statement field at a time, so memory stays flat. A byte that is not
UTF-8 in a UTF-8 file (``connectors/charset.py``) inside a ``:61:`` or its ``:86:`` makes
that transaction a ``Rejected``; anywhere else it stops the file:

- accepted around the statements: bank header lines (ABN AMRO's ``ABNANL2A`` / ``940``), a
  leading SOH (0x01) and trailing ETX (0x03), and the SWIFT FIN envelope
  ``{1:...}{2:...}{3:...}{4:`` ... ``-}{5:...}``;
- ``:61:`` ``YYMMDD[MMDD](D|C|RD|RC)[funds code]amount(N|F|S)XXX reference[//bank ref]``
  and an optional supplementary line. The date is the entry (booking) date where given,
  else the value date; an entry date in another year than the value date (December/January)
  gets the neighbouring year. ``D`` and ``RC`` are money out (negative), ``C`` and ``RD`` in.
  Amounts keep the bank's digits with the decimal comma made a point (``9,`` -> ``9``);
- ``:86:`` is the description: its lines joined with spaces, runs of spaces collapsed; with
  no ``:86:`` the ``:61:`` supplementary line is the description;
- balances ``:60F:`` ``:60M:`` ``:62F:`` ``:62M:`` ``:64:`` ``:65:`` become ``balances``
  records typed with the ISO 20022 codes camt.053 uses (OPBD, ITBD, CLBD, ITBD, CLAV, FWAV).

Identity: ``account:bank reference`` when ``:61:`` carries ``//bank ref``, else None (the
importer counts identical rows).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import BinaryIO, ClassVar

from connectors.base import Connector, Record, Rejected
from connectors.textlines import TextLines, show
from pds.errors import ImportFormatError

HINT = "Download the statement again from your bank as an MT940 (SWIFT) file."
MAX_FIELD = 64 * 1024  # characters in one field, continuation lines included
MAX_JUNK = 20  # non-tag lines allowed between statements
BALANCE_TYPES = {"60F": "OPBD", "60M": "ITBD", "62F": "CLBD", "62M": "ITBD", "64": "CLAV"}
BALANCE_TYPES["65"] = "FWAV"
_TAG = re.compile(r":(\d{2}[A-Z]?):(.*)\Z", re.DOTALL)
_ENVELOPE = re.compile(r"\{1:[^}]*\}(?:\{2:[^}]*\})?(?:\{3:(?:\{[^}]*\})*\})?\{4:")
_BALANCE = re.compile(r"([DC])(\d{6})([A-Z]{3})(\d+,\d*)\Z")
_LINE61 = re.compile(
    r"(\d{6})(\d{4})?(R?[DC])([A-Z])?(\d+,\d*)([NFS][A-Z0-9]{3})([^\n]*?)(?://([^\n]*))?"
    r"(?:\n(.*))?\Z",
    re.DOTALL,
)
_HEAD = (
    re.compile(rb"(?m)^\x01?:20:"),
    re.compile(rb"(?m)^:25:"),
    re.compile(rb"(?m)^:6[02][FM]:"),
)


class Mt940Connector(Connector):
    name: ClassVar[str] = "mt940"
    title: ClassVar[str] = "SWIFT MT940 bank statement"
    extensions: ClassVar[tuple[str, ...]] = (".sta", ".mt940", ".940", ".txt", ".swi")
    categories: ClassVar[tuple[str, ...]] = ("transactions", "balances")

    def detect(self, head: bytes, filename: str) -> bool:
        """True when the head has the :20: reference, :25: account and a :60/:62 balance."""
        text = _ENVELOPE.sub("", head.decode("latin-1")).encode("latin-1")
        return all(p.search(text) for p in _HEAD)

    def parse(self, stream: BinaryIO, filename: str) -> Iterator[Record | Rejected]:
        name = os.path.basename(filename)
        yield from _Reader(name).read(TextLines(stream, name, HINT))


@dataclass
class _Field:
    tag: str
    value: str
    line: int
    end: int = 0  # its last line
    bad: tuple[int, str] | None = None  # a line with a byte that is not UTF-8, and why


@dataclass
class _Statement:
    account: str | None = None
    currency: str | None = None
    pending: _Field | None = None  # a :61: waiting for its :86:


class _Reader:
    def __init__(self, name: str) -> None:
        self.name = name
        self.statement: _Statement | None = None
        self.statements = 0

    def read(self, lines: TextLines) -> Iterator[Record | Rejected]:
        current: _Field | None = None
        junk = 0
        self.lines = lines
        lines.rows_skippable = True  # a bad byte in a :61:/:86: rejects that transaction
        for number, raw in lines:
            line, ends = _unwrap(raw)
            match = _TAG.match(line)
            if match:
                if current:
                    yield from self._field(current)
                current = _Field(match.group(1), match.group(2), number, number)
                junk = 0
            elif ends:
                if current:
                    yield from self._field(current)
                current = None
                yield from self._end()
            elif current is not None and self.statement is not None:
                if len(current.value) + len(line) > MAX_FIELD:
                    what = f":{current.tag}: is longer than {MAX_FIELD:,} characters"
                    raise self._error(current.line, what)
                current.value += "\n" + line
                current.end = number
            elif line.strip():
                if lines.bad and (bad := lines.take_bad(number, number)):
                    raise self._error(*bad)
                junk += 1
                if junk > MAX_JUNK:
                    raise self._error(number, "expected an MT940 field like :20: or :61:")
        if current:
            yield from self._field(current)
        yield from self._end()
        if not self.statements:
            raise ImportFormatError(
                f"{self.name}: no MT940 statement (a :20: field) was found", hint=HINT
            )

    def _field(self, f: _Field) -> Iterator[Record | Rejected]:
        if self.lines.bad:
            f.bad = self.lines.take_bad(f.line, f.end)
            pending = self.statement is not None and self.statement.pending is not None
            if f.bad is not None and not (f.tag == "61" or (f.tag == "86" and pending)):
                raise self._error(*f.bad)
        if f.tag == "20":
            yield from self._end()
            self.statement = _Statement()
            self.statements += 1
            return
        st = self.statement
        if st is None:
            raise self._error(f.line, f":{f.tag}: comes before the statement's :20: field")
        if f.tag != "86" and st.pending:
            yield self._transaction(st.pending, None)
            st.pending = None
        if f.tag == "25":
            st.account = f.value.strip() or None
        elif f.tag in BALANCE_TYPES:
            yield self._balance(f)
        elif f.tag == "61":
            st.pending = f
        elif f.tag == "86" and st.pending:
            yield self._transaction(st.pending, f)
            st.pending = None

    def _end(self) -> Iterator[Record | Rejected]:
        """The statement ends (a ``-`` line, the next :20:, or the end of the file)."""
        st = self.statement
        if st is not None and st.pending:
            yield self._transaction(st.pending, None)
        self.statement = None

    def _balance(self, f: _Field) -> Record | Rejected:
        """A balances Record; a bad opening balance (:60F:/:60M:, which gives the
        statement's currency) refuses the file, any other bad balance is Rejected."""
        assert self.statement is not None
        match = _BALANCE.match(f.value.strip())
        if match is None:
            what = f':{f.tag}: "{show(f.value)}" is not a balance like C110522EUR3236,28'
            return self._bad_balance(f, what)
        mark, yymmdd, currency, amount = match.groups()
        day = _yymmdd(yymmdd)
        if day is None:
            return self._bad_balance(f, f':{f.tag}: date "{yymmdd}" is not a real date')
        if f.tag.startswith("60"):
            self.statement.currency = currency
        payload = {
            "date": day.isoformat(),
            "amount": _amount(amount, mark == "D"),
            "currency": currency,
            "type": BALANCE_TYPES[f.tag],
            "account": self.statement.account,
        }
        return Record("balances", payload["date"], payload, None, f"line {f.line} :{f.tag}:")

    def _bad_balance(self, f: _Field, what: str) -> Rejected:
        if f.tag.startswith("60"):
            raise self._error(f.line, what)
        return _rejected(f.line, what)

    def _transaction(self, f: _Field, info: _Field | None) -> Record | Rejected:
        """A transactions Record; a malformed :61: or one with a bad date is Rejected."""
        st = self.statement
        assert st is not None
        bad = f.bad or (info.bad if info is not None else None)
        if bad is not None:  # a byte that is not UTF-8 in a UTF-8 file
            return _rejected(*bad)
        match = _LINE61.match(f.value.strip(" "))
        if match is None:
            what = f':61: "{show(f.value)}" is not a statement line like 1105240524D9,N192NONREF'
            return _rejected(f.line, what)
        vdate, edate, mark, _funds, amount, kind, ref, bank_ref, extra = match.groups()
        if st.currency is None:
            raise self._error(f.line, ":61: comes before the opening balance (:60F:)")
        day = _booking_date(vdate, edate)
        if day is None:
            return _rejected(f.line, f':61: date "{vdate}{edate or ""}" is not a real date')
        ref = ref.strip()
        bank_ref = (bank_ref or "").strip() or None
        supplementary = " ".join((extra or "").split())
        description = " ".join(info.value.split()) if info else ""
        payload = {
            "date": day,
            "amount": _amount(amount, mark in ("D", "RC")),
            "currency": st.currency,
            "description": description or supplementary,
            "counterparty": None,
            "balance": None,
            "type": kind,
            "account": st.account,
            "reference": ref if ref and ref != "NONREF" else bank_ref,
        }
        identity = f"{st.account}:{bank_ref}" if bank_ref else None
        return Record("transactions", day, payload, identity, f"line {f.line} :61:")

    def _error(self, number: int, what: str) -> ImportFormatError:
        return ImportFormatError(f"{self.name} line {number}: {what}", hint=HINT)


def _rejected(number: int, what: str) -> Rejected:
    return Rejected(f"line {number}", what)


def _unwrap(raw: str) -> tuple[str, bool]:
    """The line without SOH/ETX and SWIFT envelope; True if it ends a statement."""
    line = raw.lstrip("\x01").rstrip("\x03").rstrip()
    envelope = _ENVELOPE.match(line)
    if envelope:
        line = line[envelope.end() :]
    if line == "-" or line.startswith("-}"):
        return "", True
    return line, False


def _yymmdd(text: str) -> date | None:
    year = int(text[:2])
    try:
        return date(2000 + year if year < 70 else 1900 + year, int(text[2:4]), int(text[4:]))
    except ValueError:
        return None


def _booking_date(vdate: str, edate: str | None) -> str | None:
    value = _yymmdd(vdate)
    if value is None or not edate:
        return value.isoformat() if value else None
    month = int(edate[:2])
    year = value.year
    if month - value.month > 6:
        year -= 1
    elif value.month - month > 6:
        year += 1
    try:
        return date(year, month, int(edate[2:])).isoformat()
    except ValueError:
        return None


def _amount(text: str, negative: bool) -> str:
    """``"1000,00"`` -> ``"1000.00"``, ``"9,"`` -> ``"9"``; signed."""
    whole, _, fraction = text.partition(",")
    number = (whole.lstrip("0") or "0") + (f".{fraction}" if fraction else "")
    return "-" + number if negative and number.strip("0.") else number
