"""URL converters: row ids that SQLite can hold, and ids a view answers itself."""

from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter

from pds.numbers import SQLITE_MAX


class RowIdConverter(IntegerConverter):
    """Flask's ``<int:...>`` for row ids: ASCII digits up to :data:`SQLITE_MAX`, else 404.

    Werkzeug's own takes any size (SQLite then raises OverflowError: a 500) and any Unicode
    digit.
    """

    regex = r"[0-9]{1,19}"

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", SQLITE_MAX)
        super().__init__(map, *args, **kwargs)


class LookupIdConverter(IntegerConverter):
    """``<lookup_id:...>`` for a view that answers any id itself (the records API: a 404
    exactly like a missing record's, after authentication and logging): ASCII digits of any
    length; one past :data:`SQLITE_MAX` stands for every id too big to exist."""

    regex = r"[0-9]+"

    def to_python(self, value: str) -> int:
        digits = value.lstrip("0") or "0"
        return int(digits) if len(digits) <= len(str(SQLITE_MAX)) else SQLITE_MAX + 1
