"""ISO 20022 camt.053 bank-to-customer statements (any ``camt.053.001.NN`` version).

Namespace-agnostic: elements are matched by local name, and the root ``Document`` may carry
any ``urn:iso:std:iso:20022:tech:xsd:camt.053.001.NN`` namespace (or none). Read through
``connectors.xmlsafe.iterparse`` (defusedxml: no DTD, no entities), streamed: each ``Bal``
and ``Ntry`` is handled at its end tag and then dropped from the tree, so memory stays flat
for a statement of any length. A run of more than ``MAX_RUN`` bytes without a ``<`` or ``>``
(a giant text node or tag) is refused before the parser buffers it. A ``Bal`` or ``Ntry``
with a missing or bad amount, currency, credit/debit mark, date or balance type is yielded
as a ``Rejected`` naming it (``Stmt 1 Ntry 3 (line 92)``); broken XML refuses the file.

One ``transactions`` record per booked ``Ntry`` (an entry whose ``Sts`` is ``PDNG`` or
``INFO`` is not booked and is left out; a batch entry with several ``TxDtls`` stays one
record with the entry's amount). One ``balances`` record per ``Bal``. Field mapping:
docs/categories.md. Dates: ``Dt``, or the calendar date of ``DtTm`` as the bank wrote it
(``2014-12-31T13:15:00+01:00`` is 2014-12-31: the bank's own calendar, no zone shift).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import date
from typing import Any, BinaryIO, ClassVar
from xml.etree.ElementTree import Element

from connectors.base import Connector, Record, Rejected
from connectors.textlines import show
from connectors.xmlsafe import iterparse, local
from pds.errors import ImportFormatError

HINT = "Download the statement again from your bank as a camt.053 (XML) file."
MAX_BYTES = 1 << 30
MAX_RUN = 1 << 20  # bytes without a "<" or ">"
MAX_HELD = 10_000
_AMOUNT = re.compile(r"[0-9]+(\.[0-9]+)?\Z")
_SKIPPED = ("PDNG", "INFO")


class Camt053Connector(Connector):
    name: ClassVar[str] = "camt053"
    title: ClassVar[str] = "ISO 20022 camt.053 bank statement (XML)"
    extensions: ClassVar[tuple[str, ...]] = (".xml", ".camt", ".053")
    categories: ClassVar[tuple[str, ...]] = ("transactions", "balances")

    def detect(self, head: bytes, filename: str) -> bool:
        """True for XML whose head names camt.053 or its BkToCstmrStmt element."""
        return b"<" in head and (b"BkToCstmrStmt" in head or b"camt.053.001." in head)

    def parse(self, stream: BinaryIO, filename: str) -> Iterator[Record | Rejected]:
        name = os.path.basename(filename)
        source = _RunCap(stream, name)
        yield from _Reader(name).read(iterparse(source, name, ("start", "end"), False, MAX_BYTES))


class _RunCap:
    """A stream view that refuses more than MAX_RUN bytes without a tag bracket."""

    def __init__(self, raw: BinaryIO, name: str) -> None:
        self.raw = raw
        self.name = name
        self.run = 0
        self.offset = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(min(n, 1 << 16) if n and n > 0 else 1 << 16)
        first = min((i for i in (data.find(b"<"), data.find(b">")) if i >= 0), default=-1)
        if first < 0:
            self.run += len(data)
            self._check(self.offset + len(data))
        else:
            self.run += first
            self._check(self.offset + first)
            self.run = len(data) - 1 - max(data.rfind(b"<"), data.rfind(b">"))
        self.offset += len(data)
        return data

    def _check(self, position: int) -> None:
        if self.run > MAX_RUN:
            raise ImportFormatError(
                f"{self.name}: more than {MAX_RUN:,} bytes of text without an XML tag "
                f"(by byte {position:,})",
                hint=HINT,
            )


class _Reader:
    def __init__(self, name: str) -> None:
        self.name = name
        self.stack: list[Element] = []
        self.statements = 0
        self.account: str | None = None
        self.currency: str | None = None
        self.entries = 0
        self.balances = 0
        self.held = 0  # elements started since the last one dropped from the tree

    def read(self, events: Iterator[tuple[str, Any]]) -> Iterator[Record | Rejected]:
        yield from self._events(events)
        if not self.statements:
            raise ImportFormatError(f"{self.name}: the file has no Stmt (statement)", hint=HINT)

    def _events(self, events: Iterator[tuple[str, Any]]) -> Iterator[Record | Rejected]:
        self.events = events
        for event, elem in events:
            if event == "start":
                if not self.stack:
                    self._root(elem)
                self.stack.append(elem)
                self.held += 1
                if self.held > MAX_HELD:
                    what = f"more than {MAX_HELD:,} elements inside one Stmt child element"
                    raise ImportFormatError(f"{self.name}: {what}", hint=HINT)
                continue
            self.stack.pop()
            tag = local(elem.tag)[1]
            parent = local(self.stack[-1].tag)[1] if self.stack else ""
            if parent == "Stmt":
                record = self._statement_child(tag, elem)
                if record is not None:
                    yield record
            elif tag == "Stmt":
                self.statements += 1
                self.account = self.currency = None
                self.entries = self.balances = 0
            elif parent not in ("BkToCstmrStmt", "Document"):
                continue
            if self.stack:
                self.stack[-1].remove(elem)
                self.held = len(self.stack)

    def _root(self, elem: Element) -> None:
        uri, tag = local(elem.tag)
        if tag != "Document" or (uri and "camt.053." not in uri):
            what = f"{uri or 'no namespace'}" if tag == "Document" else f"<{tag}>"
            raise ImportFormatError(
                f"{self.name}: not a camt.053 statement (the root is {what})", hint=HINT
            )

    def _statement_child(self, tag: str, elem: Element) -> Record | Rejected | None:
        """The Record of a Bal or Ntry (a Rejected for a bad one); Acct sets the account."""
        try:
            return self._statement_part(tag, elem)
        except _BadElement as bad:
            return bad.rejected

    def _statement_part(self, tag: str, elem: Element) -> Record | None:
        if tag == "Acct":
            self.account = _text(elem, "Id", "IBAN") or _text(elem, "Id", "Othr", "Id")
            self.currency = _text(elem, "Ccy")
        elif tag == "Bal":
            self.balances += 1
            return self._balance(elem, self._where("Bal", self.balances))
        elif tag == "Ntry":
            self.entries += 1
            return self._entry(elem, self._where("Ntry", self.entries))
        return None

    def _where(self, tag: str, n: int) -> str:
        """``Stmt 1 Ntry 3 (line 92)``: the element and the line it starts on."""
        line = getattr(self.events, "line", 0)
        where = f"Stmt {self.statements + 1} {tag} {n}"
        return f"{where} (line {line})" if line else where

    def _balance(self, elem: Element, where: str) -> Record:
        kind = _text(elem, "Tp", "CdOrPrtry", "Cd") or _text(elem, "Tp", "CdOrPrtry", "Prtry")
        if not kind:
            raise self._error(where, "Tp/CdOrPrtry (the balance type) is missing")
        amount, currency = self._amount(elem, where)
        day = self._date(elem, "Dt", where)
        payload = {
            "date": day,
            "amount": amount,
            "currency": currency,
            "type": kind,
            "account": self.account,
        }
        return Record("balances", day, payload, None, where)

    def _entry(self, elem: Element, where: str) -> Record | None:
        status = _text(elem, "Sts", "Cd") or _text(elem, "Sts")
        if status in _SKIPPED:
            return None
        amount, currency = self._amount(elem, where)
        day = self._date(elem, "BookgDt", where, fallback="ValDt")
        credit = not amount.startswith("-")
        counterparty = _party(elem, "Dbtr" if credit else "Cdtr")
        description = (
            _text(elem, "AddtlNtryInf")
            or " ".join(t for e in _all(elem, "Ustrd") if (t := (e.text or "").strip()))
            or _first_text(elem, "AddtlTxInf")
            or counterparty
            or ""
        )
        service_ref = _text(elem, "AcctSvcrRef")
        end_to_end = _first_text(elem, "EndToEndId")
        if end_to_end == "NOTPROVIDED":
            end_to_end = None
        payload = {
            "date": day,
            "amount": amount,
            "currency": currency,
            "description": " ".join(description.split()),
            "counterparty": counterparty,
            "balance": None,
            "type": _bank_code(elem),
            "account": self.account,
            "reference": service_ref or end_to_end or _first_text(elem, "CdtrRefInf", "Ref"),
        }
        identity = f"{self.account}:{service_ref}" if service_ref else None
        return Record("transactions", day, payload, identity, where)

    def _amount(self, elem: Element, where: str) -> tuple[str, str]:
        amt = _child(elem, "Amt")
        if amt is None:
            raise self._error(where, "Amt is missing")
        text = (amt.text or "").strip()
        if not _AMOUNT.match(text):
            raise self._error(where, f'Amt "{show(text)}" is not an amount like 12.30')
        currency = (amt.get("Ccy") or self.currency or "").strip()
        if not (len(currency) == 3 and currency.isascii() and currency.isalpha()):
            raise self._error(where, f'Ccy "{show(currency)}" is not an ISO 4217 code like EUR')
        mark = _text(elem, "CdtDbtInd")
        if mark not in ("CRDT", "DBIT"):
            raise self._error(where, f'CdtDbtInd "{show(mark or "")}" is not CRDT or DBIT')
        negative = mark == "DBIT" and text.strip("0.")
        return ("-" + text if negative else text), currency.upper()

    def _date(self, elem: Element, name: str, where: str, fallback: str = "") -> str:
        holder = _child(elem, name)
        if holder is None and fallback:
            holder = _child(elem, fallback)
        if holder is None:
            raise self._error(where, f"{name} is missing")
        raw = _text(holder, "Dt") or (_text(holder, "DtTm") or "")[:10]
        if len(raw) == 10:
            try:
                return date.fromisoformat(raw).isoformat()
            except ValueError:
                pass
        raise self._error(where, f'{name} "{show(raw)}" is not a date like 2024-01-31')

    def _error(self, where: str, what: str) -> _BadElement:
        return _BadElement(Rejected(where, what))


class _BadElement(Exception):
    """A Bal or Ntry that cannot be read: the reader yields its Rejected and goes on."""

    def __init__(self, rejected: Rejected) -> None:
        super().__init__(rejected.message)
        self.rejected = rejected


def _child(elem: Element | None, name: str) -> Element | None:
    if elem is None:
        return None
    for c in elem:
        if local(c.tag)[1] == name:
            return c
    return None


def _text(elem: Element, *path: str) -> str | None:
    node: Element | None = elem
    for name in path:
        node = _child(node, name)
    text = (node.text or "").strip() if node is not None else ""
    return text or None


def _all(elem: Element, name: str) -> Iterator[Element]:
    return (e for e in elem.iter() if local(e.tag)[1] == name)


def _first_text(elem: Element, name: str, *path: str) -> str | None:
    for e in _all(elem, name):
        text = _text(e, *path) if path else (e.text or "").strip()
        if text:
            return text
    return None


def _party(elem: Element, role: str) -> str | None:
    """The name of the first debtor or creditor (v2 ``Dbtr/Nm``, v8 ``Dbtr/Pty/Nm``)."""
    for party in _all(elem, role):
        name = _text(party, "Nm") or _text(party, "Pty", "Nm")
        if name:
            return name
    return None


def _bank_code(elem: Element) -> str | None:
    """``PMNT/RCDT/BOOK`` from BkTxCd/Domn, else its proprietary code."""
    code = _child(elem, "BkTxCd")
    if code is None:
        return None
    domain = _text(code, "Domn", "Cd")
    if domain:
        family = _child(_child(code, "Domn"), "Fmly")
        parts = [domain]
        if family is not None:
            parts += [p for p in (_text(family, "Cd"), _text(family, "SubFmlyCd")) if p]
        return "/".join(parts)
    return _text(code, "Prtry", "Cd")
