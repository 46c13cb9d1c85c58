"""click parameter types the commands share."""

from __future__ import annotations

from typing import Any

import click

from pds.numbers import SQLITE_MAX, shown, whole


class WholeNumber(click.ParamType):
    """A click type for ids, counts and limits: ASCII digits from ``lo`` to ``hi``.

    ``click.INT`` would hand a 5000-digit value to ``int()`` (Python's own message) and a
    20-digit one on to SQLite (an OverflowError); this says what is allowed.
    """

    name = "integer"

    def __init__(self, lo: int = 0, hi: int = SQLITE_MAX) -> None:
        self.lo, self.hi = lo, hi

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number: int | None = value if self.lo <= value <= self.hi else None
        else:
            number = whole(str(value).strip(), self.lo, self.hi)
        if number is None:
            self.fail(
                f"{shown(str(value))} is not a whole number from {self.lo} to {self.hi}",
                param,
                ctx,
            )
        return number  # type: ignore[return-value]
