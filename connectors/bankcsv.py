"""Bank CSV statements: one generic engine driven by mapping files (built-in bank profiles
in ``connectors/csv_profiles/*.toml`` and a person's own in ``<PDS_HOME>/csv-profiles/``).

A file is recognised by its header line, which must equal a profile's ``header`` (cells
compared stripped and case-folded, trailing empty cells ignored) within the first 20
non-blank lines. ``pds import --mapping FILE`` uses one mapping directly; a mapping without
``header`` then finds its header as the first line that holds every column it names.

Reading: ``TextLines`` (charset by the rule in ``connectors/charset.py``, NUL, line cap;
a row holding a byte that is not UTF-8 in a UTF-8 file is a ``Rejected``), CR CR LF
endings read as one line end, ``csv`` for quoting. A cell that ends in a lone ``"`` with
no opening quote (Rabobank's hand-edited ``NL77RABO0311467415",...``) loses that stray
quote: ``csv`` keeps it as text.
Each row is one transaction; see docs/connectors.md for the fields. Rows whose date cell is
one of the mapping's ``skip_dates`` (John Lewis ``Pending``) are not booked yet and are left
out. Any other bad row (column count, date, amount, currency, balance) is yielded as a
``Rejected`` naming the line: it stops the file unless ``--skip-bad`` leaves it out. A row
``csv`` cannot read (broken quoting) stops the file.
"""

from __future__ import annotations

import codecs
import csv
import os
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from connectors.base import Connector, Record, Rejected
from connectors.csvmapping import Mapping, builtin_mappings, position, read_mapping, user_mappings
from connectors.csvsniff import cells, normalized, parse_amount, sniff_delimiter
from connectors.textlines import TextLines, show
from pds.errors import ImportFormatError
from pds.settings import load_settings

MAX_PREAMBLE = 20  # non-blank lines allowed before the header
HINT = (
    "Check that this is the bank's own CSV export; for another bank or layout write a "
    "mapping file (docs/connectors.md) and pass --mapping FILE."
)
_CACHE_LIMIT = 50_000


class BankCsvConnector(Connector):
    name: ClassVar[str] = "bankcsv"
    title: ClassVar[str] = "Bank CSV (Rabobank, John Lewis, Schwab, UBS, your own mappings)"
    extensions: ClassVar[tuple[str, ...]] = (".csv", ".txt")
    categories: ClassVar[tuple[str, ...]] = ("transactions",)

    def __init__(self, mapping: Mapping | None = None) -> None:
        self.mapping = mapping

    def with_mapping(self, path: Path) -> BankCsvConnector:
        """A connector that reads every file with the mapping file at ``path``."""
        return MappedCsvConnector(read_mapping(Path(path)))

    def profiles(self) -> list[Mapping]:
        """The mappings tried: the one given, else the person's own, then the built-in."""
        if self.mapping is not None:
            return [self.mapping]
        return user_mappings(load_settings().home) + list(builtin_mappings())

    def detect(self, head: bytes, filename: str) -> bool:
        """True when a line near the top is the header of a profile that has one."""
        profiles = [p for p in self.profiles() if p.header]
        if not profiles:
            return False
        seen = 0
        for line in _head_text(head).splitlines():
            if not line.strip():
                continue
            if _match(line, profiles):
                return True
            seen += 1
            if seen >= MAX_PREAMBLE:
                break
        return False

    def parse(self, stream: BinaryIO, filename: str) -> Iterator[Record | Rejected]:
        name = os.path.basename(filename)
        lines = TextLines(stream, name, HINT)
        numbered = iter(lines)
        mapping, delimiter, header, number = _find_header(numbered, self.profiles(), name)
        lines.use(mapping.encoding)
        lines.rows_skippable = True
        yield from _Rows(mapping, header, name).read(numbered, delimiter, number, lines)


class MappedCsvConnector(BankCsvConnector):
    """``pds import --mapping FILE``: the engine with one mapping, registered for one run."""

    name: ClassVar[str] = "csv-mapping"
    title: ClassVar[str] = "Bank CSV read with a mapping file"


def _head_text(head: bytes) -> str:
    data = head.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(data) - 3:  # a character cut at the end of the head
            return data[: exc.start].decode("utf-8")
        return data.decode("cp1252", errors="replace")


def _match(line: str, profiles: list[Mapping]) -> list[tuple[Mapping, str]]:
    """(profile, delimiter) for each profile whose header is ``line``."""
    found = []
    for profile in profiles:
        assert profile.header is not None
        want = normalized(list(profile.header))
        for delimiter in (profile.delimiter,) if profile.delimiter else (",", ";", "\t", "|"):
            if normalized(cells(line, delimiter)) == want:
                found.append((profile, delimiter))
                break
    return found


def _holds_columns(line: str, mapping: Mapping) -> str | None:
    """The delimiter if ``line`` holds every column ``mapping`` names, else None."""
    delimiter = mapping.delimiter or sniff_delimiter(line)
    have = set(normalized(cells(line, delimiter)))
    if all(c.strip().casefold() in have for c in mapping.column_names()):
        return delimiter
    return None


def _find_header(
    lines: Iterator[tuple[int, str]], profiles: list[Mapping], name: str
) -> tuple[Mapping, str, list[str], int]:
    """Skip to the header; return the mapping, delimiter, header cells and its line number."""
    seen = 0
    for number, line in lines:
        if not line.strip():
            continue
        matches = _match(line, [p for p in profiles if p.header])
        if not matches and len(profiles) == 1 and not profiles[0].header:
            delimiter = _holds_columns(line, profiles[0])
            matches = [(profiles[0], delimiter)] if delimiter else []
        if len(matches) > 1:
            names = ", ".join(f"{m.name} ({m.source})" for m, _ in matches)
            raise ImportFormatError(
                f"{name} line {number}: the header fits more than one mapping: {names}",
                hint="Pass --mapping FILE to choose one.",
            )
        if matches:
            mapping, delimiter = matches[0]
            return mapping, delimiter, cells(line, delimiter), number
        seen += 1
        if seen >= MAX_PREAMBLE:
            break
    if not seen:
        raise ImportFormatError(f"{name}: the file is empty", hint=HINT)
    if len(profiles) == 1:
        what = f'the header line of mapping "{profiles[0].name}" ({profiles[0].source})'
        raise ImportFormatError(f"{name}: {what} is not in the first {MAX_PREAMBLE} lines")
    raise ImportFormatError(f"{name}: no known bank CSV header line was found", hint=HINT)


class _Rows:
    """Turns the rows after the header into Records, by one mapping."""

    def __init__(self, mapping: Mapping, header: list[str], name: str) -> None:
        self.m = mapping
        self.name = name
        self.width = len(header)
        index = {cell.strip().casefold(): i for i, cell in reversed(list(enumerate(header)))}
        self.col: dict[str, Any] = {}
        for field, column in mapping.columns.items():
            if field == "description":
                self.col[field] = [self._index(index, c) for c in column]
            else:
                self.col[field] = self._index(index, column)
        self.dates: dict[str, str] = {}
        self.example = date(2024, 1, 31).strftime(mapping.date_format)

    def _index(self, index: dict[str, int], column: str) -> int:
        at = position(column)
        if at is None:
            at = index.get(column.strip().casefold())
        if at is None:
            raise ImportFormatError(
                f'{self.name}: the header has no column "{column}" ({self.m.source})', hint=HINT
            )
        self.width = max(self.width, at + 1)
        return at

    def read(
        self, lines: Iterator[tuple[int, str]], delimiter: str, header_line: int, source: TextLines
    ) -> Iterator[Record | Rejected]:
        state = {"line": header_line}

        def feed() -> Iterator[str]:
            for number, text in lines:
                state["line"] = number
                yield text + "\n"

        reader = csv.reader(feed(), delimiter=delimiter)
        start = header_line + 1
        while True:
            try:
                row = next(reader, None)
            except csv.Error as exc:
                raise self._error(start, f"not a readable CSV row ({exc})") from None
            if row is None:
                return
            bad = source.take_bad(start, state["line"]) if source.bad else None
            if bad is not None:  # a byte that is not UTF-8 in a UTF-8 file
                yield Rejected(f"line {bad[0]}", bad[1])
                start = state["line"] + 1
                continue
            try:
                record = self._record(row, start) if any(c.strip() for c in row) else None
            except _BadRow as bad:
                yield bad.rejected
            else:
                if record is not None:
                    yield record
            start = state["line"] + 1

    def _record(self, row: list[str], number: int) -> Record | None:
        row = [_unquote(cell) for cell in row]
        while len(row) > self.width and not row[-1].strip():
            row.pop()
        if len(row) != self.width:
            raise self._bad(number, f"expected {self.width} columns, found {len(row)}")
        raw_date = row[self.col["date"]].strip()
        if raw_date.casefold() in self.m.skip_dates:
            return None
        day = self._date(raw_date, number)
        account = self._text(row, "account")
        payload = {
            "date": day,
            "amount": self._amount(row, number),
            "currency": self._currency(row, number),
            "description": " ".join(t for i in self.col["description"] if (t := row[i].strip())),
            "counterparty": self._text(row, "counterparty"),
            "balance": self._balance(row, number),
            "type": self._text(row, "type"),
            "account": account,
            "reference": self._text(row, "reference"),
        }
        ident = self._text(row, "id")
        identity = f"{account or self.m.name}:{ident}" if ident else None
        return Record("transactions", day, payload, identity, f"line {number}")

    def _text(self, row: list[str], field: str) -> str | None:
        at = self.col.get(field)
        return (row[at].strip() or None) if at is not None else None

    def _date(self, raw: str, number: int) -> str:
        iso = self.dates.get(raw)
        if iso is None:
            try:
                iso = datetime.strptime(raw, self.m.date_format).date().isoformat()
            except ValueError:
                what = f'date "{show(raw)}" is not a date like {self.example}'
                raise self._bad(number, what) from None
            if len(self.dates) >= _CACHE_LIMIT:
                self.dates.clear()
            self.dates[raw] = iso
        return iso

    def _money(self, raw: str, field: str, number: int) -> str:
        try:
            return parse_amount(raw, self.m.decimal, self.m.thousands)
        except ValueError as exc:
            raise self._bad(number, f'{field} "{show(raw.strip())}" {exc}') from None

    def _amount(self, row: list[str], number: int) -> str:
        if "amount" in self.col:
            raw = row[self.col["amount"]]
            if not raw.strip():
                raise self._bad(number, f'the amount ("{self.m.columns["amount"]}") is empty')
            value = self._money(raw, "amount", number)
            marker = self._marker(row, raw)
            if marker is not None:
                return _signed(value, marker)
            return _negate(value) if self.m.negate else value
        debit, credit = row[self.col["debit"]].strip(), row[self.col["credit"]].strip()
        names = f'"{self.m.columns["debit"]}" and "{self.m.columns["credit"]}"'
        if bool(debit) == bool(credit):
            what = "both have an amount" if debit else "are both empty"
            raise self._bad(number, f"{names} {what}")
        if debit:
            return _signed(self._money(debit, "debit", number), False)
        return _signed(self._money(credit, "credit", number), True)

    def _marker(self, row: list[str], amount_cell: str) -> bool | None:
        """True for a credit marker, False for a debit one, None when there is none."""
        texts = [amount_cell.strip().upper()]
        if "direction" in self.col:
            texts.insert(0, row[self.col["direction"]].strip().upper())
        for text in texts:
            if any(text == m or text.endswith(" " + m) for m in self.m.credit_markers):
                return True
            if any(text == m or text.endswith(" " + m) for m in self.m.debit_markers):
                return False
        return None

    def _currency(self, row: list[str], number: int) -> str:
        if "currency" not in self.col:
            return self.m.currency or ""
        code = row[self.col["currency"]].strip().upper()
        if not (len(code) == 3 and code.isascii() and code.isalpha()):
            raise self._bad(number, f'currency "{show(code)}" is not an ISO 4217 code like EUR')
        return code

    def _balance(self, row: list[str], number: int) -> str | None:
        at = self.col.get("balance")
        if at is None or not row[at].strip():
            return None
        return self._money(row[at], "balance", number)

    def _error(self, number: int, what: str) -> ImportFormatError:
        return ImportFormatError(f"{self.name} line {number}: {what}", hint=HINT)

    @staticmethod
    def _bad(number: int, what: str) -> _BadRow:
        return _BadRow(Rejected(f"line {number}", what))


class _BadRow(Exception):
    """A row that cannot be read; ``read`` yields its Rejected and goes on."""

    def __init__(self, rejected: Rejected) -> None:
        super().__init__(rejected.message)
        self.rejected = rejected


def _unquote(cell: str) -> str:
    """A cell with a lone closing quote and no opening one loses the stray quote."""
    if cell.endswith('"') and cell.count('"') == 1:
        return cell[:-1]
    return cell


def _negate(value: str) -> str:
    if value.startswith("-"):
        return value[1:]
    return "-" + value if value.strip("0.") else value


def _signed(value: str, credit: bool) -> str:
    """The magnitude, positive for money in and negative for money out."""
    magnitude = value.removeprefix("-")
    return magnitude if credit or not magnitude.strip("0.") else "-" + magnitude
