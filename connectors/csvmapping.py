"""Bank CSV mapping files: the TOML that tells the generic CSV engine how to read one bank.

A mapping names the header, the columns that hold each transaction field, the date format,
the decimal and thousands style, the delimiter and the charset (see docs/connectors.md).
The built-in bank profiles are such files in ``connectors/csv_profiles/``; a person's own go
in ``<PDS_HOME>/csv-profiles/`` and are read the same way. A file with an error is refused
naming the file and the field (validated with marshmallow).
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from connectors.csvsniff import DECIMALS, DELIMITERS, THOUSANDS
from connectors.textlines import ENCODINGS
from pds.errors import ImportFormatError
from pds.numbers import TooManyDigits, toml_loads

MAX_MAPPING_BYTES = 64 * 1024
HINT = "See docs/connectors.md (Bank CSV) for the mapping file format."
SINGLE = ("date", "amount", "debit", "credit", "direction", "currency", "counterparty")
SINGLE += ("balance", "type", "account", "reference", "id")


class _Columns(Schema):
    """Which header cell holds each field; ``description`` may join several columns."""

    date = fields.String(required=True, validate=validate.Length(min=1))
    amount = fields.String(validate=validate.Length(min=1))
    debit = fields.String(validate=validate.Length(min=1))
    credit = fields.String(validate=validate.Length(min=1))
    direction = fields.String(validate=validate.Length(min=1))
    currency = fields.String(validate=validate.Length(min=1))
    description = fields.List(fields.String(validate=validate.Length(min=1)), required=True)
    counterparty = fields.String(validate=validate.Length(min=1))
    balance = fields.String(validate=validate.Length(min=1))
    type = fields.String(validate=validate.Length(min=1))
    account = fields.String(validate=validate.Length(min=1))
    reference = fields.String(validate=validate.Length(min=1))
    id = fields.String(validate=validate.Length(min=1))

    @validates_schema
    def _money(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "amount" in data and ("debit" in data or "credit" in data):
            raise ValidationError("give either amount, or debit and credit, not both", "amount")
        if "amount" not in data and not ("debit" in data and "credit" in data):
            raise ValidationError("give amount, or both debit and credit", "amount")


def _date_format(value: str) -> None:
    try:
        datetime(2024, 1, 31).strftime(value)
        ok = datetime.strptime(datetime(2024, 1, 31).strftime(value), value).date()
    except (ValueError, re.error):  # re.error: a repeated directive such as "%d %d"
        ok = None
    if ok is None or ok.isoformat() != "2024-01-31":
        raise ValidationError(f'"{value}" is not a date format with day, month and year')


class MappingSchema(Schema):
    name = fields.String(required=True, validate=validate.Regexp(r"[a-z0-9][a-z0-9-]{0,39}\Z"))
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    header = fields.List(fields.String(), validate=validate.Length(min=2))
    delimiter = fields.String(validate=validate.OneOf(DELIMITERS))
    encoding = fields.String(load_default="auto", validate=validate.OneOf(ENCODINGS))
    date_format = fields.String(required=True, validate=_date_format)
    decimal = fields.String(load_default="auto", validate=validate.OneOf(DECIMALS))
    thousands = fields.String(validate=validate.OneOf(THOUSANDS))
    currency = fields.String(validate=validate.Regexp(r"[A-Z]{3}\Z"))
    negate = fields.Boolean(load_default=False)
    credit_markers = fields.List(fields.String(), load_default=["CR"])
    debit_markers = fields.List(fields.String(), load_default=["DR"])
    skip_dates = fields.List(fields.String(), load_default=[])
    columns = fields.Nested(_Columns, required=True)

    @validates_schema
    def _consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        columns = data.get("columns", {})
        if "currency" not in data and "currency" not in columns:
            raise ValidationError("give currency, or a currency column", "currency")
        header = data.get("header")
        if header:
            known = {cell.strip().casefold() for cell in header}
            for field, column in _named(columns):
                if not _position(column) and column.strip().casefold() not in known:
                    raise ValidationError({field: [f'"{column}" is not in the header']}, "columns")


def _position(column: str) -> int | None:
    """``"#4"`` (the fourth column, for an unnamed one) -> 3; a header name -> None."""
    if column[:1] == "#" and column[1:].isdigit() and 0 < int(column[1:]) <= 1000:
        return int(column[1:]) - 1
    return None


def _named(columns: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, column) pairs, the description's columns included."""
    pairs = [(k, v) for k, v in columns.items() if k != "description"]
    pairs += [("description", c) for c in columns.get("description", [])]
    return pairs


@dataclass(frozen=True)
class Mapping:
    """A validated mapping file; ``source`` names the file for messages."""

    source: str
    name: str
    title: str
    header: tuple[str, ...] | None
    delimiter: str | None
    encoding: str
    date_format: str
    decimal: str
    thousands: str | None
    currency: str | None
    negate: bool
    credit_markers: tuple[str, ...]
    debit_markers: tuple[str, ...]
    skip_dates: frozenset[str]
    columns: dict[str, Any]

    def column_names(self) -> list[str]:
        """Every header cell the mapping reads by name (not the ``#N`` positions)."""
        return [column for _, column in _named(self.columns) if _position(column) is None]


def position(column: str) -> int | None:
    """The 0-based index a ``#N`` column names, else None."""
    return _position(column)


def parse_mapping(text: str, source: str) -> Mapping:
    """A Mapping from TOML text; ImportFormatError names ``source`` and the bad field."""
    try:
        data = toml_loads(text)
    except (tomllib.TOMLDecodeError, TooManyDigits) as exc:
        raise ImportFormatError(f"{source}: not valid TOML ({exc})", hint=HINT) from None
    columns = data.get("columns")
    if isinstance(columns, dict) and isinstance(columns.get("description"), str):
        columns["description"] = [columns["description"]]
    try:
        loaded = MappingSchema().load(data)
    except ValidationError as exc:
        raise ImportFormatError(f"{source}: {_first(exc.messages)}", hint=HINT) from None
    return Mapping(
        source=source,
        name=loaded["name"],
        title=loaded["title"],
        header=tuple(loaded["header"]) if loaded.get("header") else None,
        delimiter=loaded.get("delimiter"),
        encoding=loaded["encoding"],
        date_format=loaded["date_format"],
        decimal=loaded["decimal"],
        thousands=loaded.get("thousands"),
        currency=loaded.get("currency"),
        negate=loaded["negate"],
        credit_markers=tuple(m.upper() for m in loaded["credit_markers"]),
        debit_markers=tuple(m.upper() for m in loaded["debit_markers"]),
        skip_dates=frozenset(s.strip().casefold() for s in loaded["skip_dates"]),
        columns=loaded["columns"],
    )


def _first(messages: Any) -> str:
    """The first marshmallow error as ``field.sub: message``."""
    if isinstance(messages, dict):
        key, value = next(iter(messages.items()))
        inner = _first(value)
        if isinstance(value, dict):
            return f"{key}.{inner}"
        return inner if key == "_schema" else f"{key}: {inner}"
    if isinstance(messages, list):
        return _first(messages[0]) if messages else "invalid"
    return str(messages)


def read_mapping(path: Path) -> Mapping:
    """Load one mapping file from disk."""
    try:
        size = path.stat().st_size
        if size > MAX_MAPPING_BYTES:
            raise ImportFormatError(
                f"{path.name}: the mapping file is {size:,} bytes, more than {MAX_MAPPING_BYTES:,}",
                hint=HINT,
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportFormatError(f"{path}: cannot read the mapping file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFormatError(f"{path.name}: the mapping file is not UTF-8", hint=HINT) from None
    return parse_mapping(text, path.name)


@functools.cache
def builtin_mappings() -> tuple[Mapping, ...]:
    """The bank profiles shipped with pds, by file name (read once per process)."""
    folder = resources.files("connectors") / "csv_profiles"
    entries = sorted(folder.iterdir(), key=lambda p: p.name)
    return tuple(
        parse_mapping(p.read_text(encoding="utf-8"), p.name)
        for p in entries
        if p.name.endswith(".toml")
    )


def user_mappings(home: Path) -> list[Mapping]:
    """A person's own mapping files in ``<home>/csv-profiles``; ones with errors are left out
    (detection must not fail because of them; ``pds import --mapping FILE`` reports them)."""
    folder = home / "csv-profiles"
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.toml")):
        try:
            found.append(read_mapping(path))
        except ImportFormatError:
            continue
    return found
