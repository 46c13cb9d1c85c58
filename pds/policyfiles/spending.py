"""The owner's spending rules: ``$PDS_HOME/spending.toml``, a TOML file of ``[[rule]]``
tables that give a transaction its spending category ("Groceries", "Rent")::

    [[rule]]
    category = "Groceries"
    contains = "tesco"              # in the counterparty or the description, any case

    [[rule]]
    category = "Salary"
    matches = "^ACME LTD"           # a regular expression, searched (any case)
    field = "counterparty"          # "counterparty", "description" or "either" (default)
    direction = "in"                # "in" (money in) or "out"; both when left out

The first rule that matches wins; a transaction no rule matches has no category. The file is
validated whole by marshmallow schemas, like the policy files: a bad file is refused on its
first problem, named as ``spending.toml: rule 2 ("Groceries"): field "matches": ...``.

Regular expressions are RE2's (``google-re2``), not Python's ``re``: RE2 searches in time
linear in the text whatever the pattern, so no pattern can hold an import or a request for
long (``re`` backtracks: ``(a|aa)*b`` takes exponential time). RE2 has no backreferences or
lookaround; a pattern it refuses is an error naming the rule. A pattern is at most
:data:`MAX_PATTERN` characters and is searched in at most :data:`MAX_TEXT` characters of a
field.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import re2
from marshmallow import RAISE, Schema, ValidationError, fields, validate
from marshmallow import validates_schema as _validates_schema

from pds.errors import PdsError
from pds.numbers import TooManyDigits, toml_loads

FILENAME = "spending.toml"
MAX_RULES = 1000
MAX_PATTERN = 200
MAX_TEXT = 500
MAX_NAME = 60
FIELDS = ("either", "counterparty", "description")
DIRECTIONS = ("in", "out")
REQUIRED = {"required": "is required", "null": "is required"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SpendingRulesError(PdsError, ValueError):
    """A spending rules file that cannot be used; the message names the rule and the field.
    A bad file is refused whole: none of its rules is used, and a file being saved is not
    written."""

    code = "spending_rules_error"
    status = 422
    hint = "Fix the file and run `pds spending check FILE`; the rules in use stay as they were."


class _Str(fields.String):
    default_error_messages = {"invalid": "is not a text string"}


def _name(value: str) -> None:
    if not value.strip():
        raise ValidationError("must not be empty")
    if len(value) > MAX_NAME:
        raise ValidationError(f"is longer than {MAX_NAME} characters")
    if _CONTROL.search(value):
        raise ValidationError("must be one line of text")


def _needle(value: str) -> None:
    if not value:
        raise ValidationError("must not be empty")
    if len(value) > MAX_PATTERN:
        raise ValidationError(f"is longer than {MAX_PATTERN} characters")
    if _CONTROL.search(value):
        raise ValidationError("must be one line of text")


def _options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.never_capture = True  # a rule asks only whether it matches
    options.log_errors = False  # the refusal is the rule's error, not a line on stderr
    return options


_OPTIONS = _options()


def compile_pattern(value: str) -> re2._Regexp:
    """``value`` compiled by RE2, searching in any case; ValidationError when RE2 refuses it."""
    try:
        return re2.compile(value, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else ""
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValidationError(
            f'"{value}" is not a regular expression in RE2 syntax ({reason}); the rules use '
            "RE2, which has no backreferences or lookaround"
        ) from None


def _pattern(value: str) -> None:
    _needle(value)
    compile_pattern(value)


@dataclass(frozen=True, slots=True)
class SpendingRule:
    number: int
    category: str
    field: str  # "either", "counterparty" or "description"
    direction: str | None  # "in", "out" or None (both)
    contains: str | None  # lower-case
    pattern: re2._Regexp | None


class _RuleSchema(Schema):
    class Meta:
        unknown = RAISE

    category = _Str(required=True, validate=_name, error_messages=REQUIRED)
    contains = _Str(validate=_needle, error_messages=REQUIRED)
    matches = _Str(validate=_pattern, error_messages=REQUIRED)
    field = _Str(
        load_default="either",
        validate=validate.OneOf(
            FIELDS, error='"{input}" is not either, counterparty or description'
        ),
        error_messages=REQUIRED,
    )
    direction = _Str(
        load_default=None,
        validate=validate.OneOf(DIRECTIONS, error='"{input}" is not in or out'),
        error_messages=REQUIRED,
    )

    @_validates_schema
    def _one_test(self, data: dict[str, Any], **kwargs: Any) -> None:
        given = [k for k in ("contains", "matches") if k in data]
        if not given:
            raise ValidationError("needs contains or matches", "_schema")
        if len(given) > 1:
            raise ValidationError("give contains or matches, not both", "_schema")


def _first(messages: Any) -> str:
    while isinstance(messages, (dict, list)):
        messages = next(iter(messages.values())) if isinstance(messages, dict) else messages[0]
    return str(messages)


def _where(label: str, number: int, table: Mapping[str, Any]) -> str:
    name = table.get("category")
    if isinstance(name, str) and name.strip() and len(name) <= MAX_NAME:
        return f'{label}: rule {number} ("{name.strip()}")'
    return f"{label}: rule {number}"


def _rule(table: Any, label: str, number: int) -> SpendingRule:
    if not isinstance(table, dict):
        raise SpendingRulesError(f"{label}: rule {number}: is not a table; write it as [[rule]]")
    where = _where(label, number, table)
    schema = _RuleSchema()
    try:
        data = schema.load(table)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        order = [k for k in table if k in messages] + [k for k in messages if k not in table]
        key = order[0]
        if key == "_schema":
            raise SpendingRulesError(f"{where}: {_first(messages[key])}") from None
        if key not in schema.fields:
            takes = ", ".join(schema.fields)
            raise SpendingRulesError(
                f'{where}: field "{key}": is not a field of a rule; it takes {takes}'
            ) from None
        raise SpendingRulesError(f'{where}: field "{key}": {_first(messages[key])}') from None
    pattern = data.get("matches")
    return SpendingRule(
        number=number,
        category=data["category"].strip(),
        field=data["field"],
        direction=data["direction"],
        contains=data["contains"].lower() if "contains" in data else None,
        pattern=compile_pattern(pattern) if pattern is not None else None,
    )


_WHERE = {"either": 0, "counterparty": 1, "description": 2}
_SIGN = {None: 0, "in": 1, "out": -1}


@dataclass(frozen=True)
class SpendingRules:
    """The rules of one file, in order; :meth:`category_for` gives a payload's category."""

    rules: tuple[SpendingRule, ...] = ()

    def __post_init__(self) -> None:
        # the rules as plain tuples: category_for runs for every transaction of an import
        compiled = tuple(
            (
                _SIGN[r.direction],
                _WHERE[r.field],
                r.contains,
                r.pattern.search if r.pattern is not None else None,
                r.category,
            )
            for r in self.rules
        )
        object.__setattr__(self, "_compiled", compiled)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def category_for(self, payload: Mapping[str, Any]) -> str | None:
        """The category of the first rule that matches a transaction payload, or None: its
        counterparty and description (lower case, the first MAX_TEXT characters), and the
        sign of its amount for a rule with a direction (zero is neither in nor out)."""
        if not self.rules:
            return None
        counterparty = str(payload.get("counterparty") or "")[:MAX_TEXT].lower()
        description = str(payload.get("description") or "")[:MAX_TEXT].lower()
        both = f"{counterparty}\0{description}"  # a needle holds no NUL: never across the two
        texts = (both, counterparty, description)
        sign: int | None = None
        encoded: tuple[bytes, bytes, bytes] | None = None  # RE2 searches UTF-8: encode once
        for direction, where, needle, search, category in self._compiled:  # type: ignore[attr-defined]
            if direction:
                if sign is None:
                    sign = amount_sign(payload.get("amount"))
                if sign != direction:
                    continue
            if needle is not None:
                if needle in texts[where]:
                    return category
                continue
            if encoded is None:
                first, second = counterparty.encode(), description.encode()
                encoded = (b"", first, second)
            if where == 0:
                if search(encoded[1]) or search(encoded[2]):
                    return category
            elif search(encoded[where]):
                return category
        return None

    @property
    def categories(self) -> list[str]:
        """The category names the rules give, each once, in the order of the rules."""
        return list(dict.fromkeys(r.category for r in self.rules))


def amount_sign(amount: object) -> int:
    """1 for money in, -1 for money out, 0 for zero or an amount that is not a number."""
    text = str(amount).strip()
    digits = text.lstrip("+-")
    if digits.replace(".", "", 1).isdigit():  # the payloads' decimal strings: no Decimal
        if not digits.strip("0."):
            return 0
        return -1 if text[0] == "-" else 1
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        return 0
    if not value.is_finite():
        return 0
    return (value > 0) - (value < 0)


def parse_rules(text: str, label: str = FILENAME) -> SpendingRules:
    """The rules of a file's text; SpendingRulesError (naming ``label``) refuses it whole."""
    try:
        doc = toml_loads(text)
    except (tomllib.TOMLDecodeError, TooManyDigits) as exc:
        raise SpendingRulesError(f"{label}: not valid TOML: {exc}") from None
    except RecursionError:
        raise SpendingRulesError(f"{label}: arrays or tables are nested too deeply") from None
    for key in doc:
        if key != "rule":
            raise SpendingRulesError(
                f'{label}: unknown top-level key "{key}"; the file holds only [[rule]] tables'
            )
    tables = doc.get("rule", [])
    if not isinstance(tables, list):
        raise SpendingRulesError(f'{label}: "rule" must be written as [[rule]] tables')
    if len(tables) > MAX_RULES:
        raise SpendingRulesError(f"{label}: {len(tables)} rules; at most {MAX_RULES} are read")
    return SpendingRules(tuple(_rule(t, label, n) for n, t in enumerate(tables, 1)))


def rules_path(home: Path) -> Path:
    return home / FILENAME


def read_text(home: Path) -> str:
    """The text of the owner's rules file, or '' when there is none."""
    try:
        return rules_path(home).read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except UnicodeDecodeError:
        raise SpendingRulesError(f"{rules_path(home)}: not UTF-8 text") from None
    except OSError as exc:
        raise SpendingRulesError(f"{rules_path(home)}: cannot be read ({exc.strerror})") from None


def load(home: Path) -> SpendingRules:
    """The owner's rules (none when there is no file); SpendingRulesError for a bad file."""
    return parse_rules(read_text(home), str(rules_path(home)))


def save(home: Path, text: str) -> SpendingRules:
    """Check ``text`` and write it as the owner's rules file atomically (a temp file renamed
    over it, mode 0600); a bad text raises SpendingRulesError and writes nothing."""
    with saving(home, text) as rules:
        pass
    return rules


@contextmanager
def saving(home: Path, text: str) -> Iterator[SpendingRules]:
    """Check ``text`` (SpendingRulesError: nothing written), write it to a temp file beside
    the rules file and give its rules; the temp file replaces the rules file when the block
    ends, or is removed when the block raises (the file on disk unchanged)."""
    rules = parse_rules(text)
    home.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=home, prefix=".spending-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        yield rules
        os.replace(tmp, rules_path(home))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
