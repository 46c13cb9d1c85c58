"""UK midata personal current account CSV: the file UK banks give under "download your data".

Layout (the 2014 industry midata PCA standard): optional preamble lines (Barclays and
Nationwide write ``Account Number:,****12345`` and a blank line), the header
``Date,Type,Merchant/Description,Debit/Credit,Balance``, one row per transaction (``DD/MM/YYYY``
date, one signed amount, the running balance after it; usually newest first), then a trailer
``Arranged overdraft limit,DD/MM/YYYY,amount`` that ends the transactions and is not one.
Accepted variants: any case and padding in the header, quoted fields, ``£`` and ``+`` in
amounts, ``;`` as the delimiter with a trailing ``;``, blank lines anywhere. Only blank lines
may follow the trailer, so two files pasted together are refused rather than half read.

Payload: currency ``GBP``; description = Merchant/Description; type = the Type column as the
bank wrote it (``VIS``, ``Visa purchase``); account = the masked number of an
``Account Number:`` preamble line, else None; counterparty, reference None. The format has no
transaction id, so ``identity`` is None and the importer counts identical rows.

Charset: the stream is read one physical line at a time through ``TextLines``, so memory
stays flat for a million-row file, by the one rule in ``connectors/charset.py``: UTF-8 (a
BOM dropped); a file with no valid multi-byte UTF-8 anywhere is Windows-1252, which reads
ISO-8859-1 text right (a lone Latin-1 ``£`` first seen on line 900,000 is found by scanning
ahead, not by sniffing a first chunk); in a UTF-8 file a row holding a byte that is not
UTF-8 is a ``Rejected`` naming its line, column and file offset (``--skip-bad`` leaves it
out, every other ``é`` stays an ``é``). A line that is neither is an error naming the line.
"""

from __future__ import annotations

import codecs
import csv
import os
import re
from collections.abc import Generator, Iterator
from datetime import date
from typing import Any, BinaryIO, ClassVar

from connectors.base import Connector, Record, Rejected
from connectors.textlines import TextLines
from pds.errors import ImportFormatError

HEADER = ("date", "type", "merchant/description", "debit/credit", "balance")
HEADER_TEXT = "Date,Type,Merchant/Description,Debit/Credit,Balance"
TRAILER = "arranged overdraft limit"
MAX_PREAMBLE = 20  # non-blank lines allowed before the header
HINT = "Download the statement again from your bank as a midata (CSV) file."
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_CACHE_LIMIT = 50_000  # distinct date strings remembered (a year has 365)


class MidataConnector(Connector):
    name = "midata"
    title = "UK midata current account (CSV)"
    extensions: ClassVar[tuple[str, ...]] = (".csv",)
    categories: ClassVar[tuple[str, ...]] = ("transactions",)

    def detect(self, head: bytes, filename: str) -> bool:
        """True when the midata header line appears in the head, after an optional preamble."""
        text = head.removeprefix(codecs.BOM_UTF8).decode("latin-1")
        seen = 0
        for line in text.splitlines():
            if not line.strip():
                continue
            if header_delimiter(line):
                return True
            seen += 1
            if seen > MAX_PREAMBLE:
                break
        return False

    def parse(self, stream: BinaryIO, filename: str) -> Iterator[Record | Rejected]:
        name = os.path.basename(filename)
        source = TextLines(stream, name, HINT)
        lines = source.texts()
        delimiter, account, header_line = _read_preamble(lines, name)
        source.rows_skippable = True
        reader = csv.reader(lines, delimiter=delimiter, skipinitialspace=True, strict=True)
        yield from _rows(reader, header_line, account, name, source)


def header_delimiter(line: str) -> str | None:
    """The delimiter ("," or ";") if ``line`` is the midata header, else None."""
    for delimiter in ",;":
        cells = [cell.strip().lower() for cell in _cells(line, delimiter)]
        if cells and not cells[-1]:
            cells.pop()  # a trailing delimiter
        if tuple(cells) == HEADER:
            return delimiter
    return None


def _cells(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line.strip()], delimiter=delimiter, skipinitialspace=True), [])
    except csv.Error:
        return []


def _read_preamble(lines: Iterator[str], name: str) -> tuple[str, str | None, int]:
    """Skip to the header; return its delimiter, the preamble's account number, its line."""
    account = None
    seen = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        delimiter = header_delimiter(line)
        if delimiter:
            return delimiter, account, number
        seen += 1
        if seen > MAX_PREAMBLE:
            break
        account = _account_number(line) or account
    if not seen:
        raise ImportFormatError(f"{name}: the file is empty", hint=HINT)
    raise ImportFormatError(f'{name}: the midata header line "{HEADER_TEXT}" is missing', hint=HINT)


def _account_number(line: str) -> str | None:
    for delimiter in ",;":
        cells = _cells(line, delimiter)
        if len(cells) >= 2 and cells[0].strip().rstrip(":").strip().lower() == "account number":
            return cells[1].strip() or None
    return None


def _rows(
    reader: Any, offset: int, account: str | None, name: str, source: TextLines
) -> Iterator[Record | Rejected]:
    """Records from the rows after the header (line ``offset``); csv errors name the line."""
    try:
        if (yield from _transactions(reader, offset, account, source)):
            _only_blank_rows(reader, offset, name)
    except csv.Error as exc:
        raise _error(name, offset + reader.line_num, f"not a readable CSV row ({exc})")


def _transactions(
    reader: Any, offset: int, account: str | None, source: TextLines
) -> Generator[Record | Rejected, None, bool]:
    """Yield a Record per row up to the trailer (a Rejected for a row with a bad date,
    amount, balance or column count, or a byte that is not UTF-8 in a UTF-8 file); return
    True if the trailer was seen."""
    dates: dict[str, str] = {}  # raw date -> ISO date, so each distinct date is checked once
    previous = 0  # reader.line_num after the previous row
    for row in reader:
        number = offset + previous + 1
        previous = reader.line_num
        if source.bad and (bad := source.take_bad(number, offset + previous)):
            yield Rejected(f"line {bad[0]}", bad[1])
            continue
        width = len(row)
        if width == 6 and not row[5].strip():
            width = 5  # a trailing delimiter
        if width != 5:
            if not any(cell.strip() for cell in row):
                continue
            if _is_trailer(row):
                return True
            yield _rejected(number, f"expected 5 columns ({HEADER_TEXT}), found {width}")
            continue
        iso = dates.get(row[0])
        if iso is None:
            if _is_trailer(row):
                return True
            if not any(cell.strip() for cell in row):
                continue  # ",,,," pads a blank line in some exports
            iso = _iso_date(row[0])
            if iso is None:
                yield _rejected(number, f'date "{_show(row[0])}" is not a date like 31/12/2024')
                continue
            if len(dates) >= _CACHE_LIMIT:
                dates.clear()
            dates[row[0]] = iso
        amount = _money(row[3])
        if amount is None:
            yield _rejected(number, f'amount "{_show(row[3])}" is not a number')
            continue
        balance = None
        if row[4].strip():
            balance = _money(row[4])
            if balance is None:
                yield _rejected(number, f'balance "{_show(row[4])}" is not a number')
                continue
        payload = {
            "date": iso,
            "amount": amount,
            "currency": "GBP",
            "description": row[2].strip(),
            "counterparty": None,
            "balance": balance,
            "type": row[1].strip() or None,
            "account": account,
            "reference": None,
        }
        yield Record("transactions", iso, payload, None, f"line {number}")
    return False


def _only_blank_rows(reader: Any, offset: int, name: str) -> None:
    """After the trailer only blank lines may follow: two files pasted together are refused."""
    previous = reader.line_num
    for row in reader:
        if any(cell.strip() for cell in row):
            what = 'unexpected row after the "Arranged overdraft limit" trailer'
            raise _error(name, offset + previous + 1, what)
        previous = reader.line_num


def _is_trailer(row: list[str]) -> bool:
    return row[0].strip().lower() == TRAILER


def _iso_date(raw: str) -> str | None:
    """``DD/MM/YYYY`` (or ``D/M/YYYY``) as ``YYYY-MM-DD``, None if it is not a real date."""
    parts = raw.strip().split("/")
    if len(parts) != 3:
        return None
    day, month, year = parts
    digits = day + month + year
    if not (len(year) == 4 and 0 < len(day) < 3 and 0 < len(month) < 3):
        return None
    if not (digits.isascii() and digits.isdigit()):
        return None
    try:
        return date(int(year), int(month), int(day)).isoformat()
    except ValueError:
        return None


def _money(raw: str) -> str | None:
    """``"-£1,052.00"`` -> ``"-1052.00"``: the bank's digits, "-" kept, "+" and "£" dropped."""
    text = raw.strip()
    sign = ""
    if text[:1] in ("-", "+"):
        sign, text = text[0], text[1:].lstrip()
    if text[:1] == "£":
        text = text[1:]
        if not sign and text[:1] in ("-", "+"):
            sign, text = text[0], text[1:]
    if "," in text and _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    if not (text.isascii() and text.replace(".", "", 1).isdigit()):
        return None
    if text[0] == "." or text[-1] == ".":
        return None
    return "-" + text if sign == "-" else text


def _show(value: str) -> str:
    """A field for a message: control characters escaped, long values cut."""
    shown = value if value.isprintable() else repr(value)[1:-1]
    return shown if len(shown) <= 40 else shown[:40] + "..."


def _rejected(number: int, what: str) -> Rejected:
    return Rejected(f"line {number}", what)


def _error(name: str, number: int, what: str) -> ImportFormatError:
    return ImportFormatError(f"{name} line {number}: {what}", hint=HINT)
