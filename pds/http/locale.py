"""The owner's language and the way their pages write dates, amounts and numbers.

Flask-Babel picks the locale for each request: ``PDS_LOCALE`` when the owner set one, else
the browser's preferred language (``Accept-Language``) among those CLDR knows, else British
English. The templates' strings are marked for translation (``{{ _("...") }}``, extracted
by ``make messages`` into ``pds/http/web/translations``); English is the source language.
Formatting uses CLDR through Babel, so a German owner reads ``1.234,50 €`` and ``5. Sept.
2019`` while the words stay English until a catalogue for German exists.

The template filters: ``money`` (an amount with its currency), ``number``, ``day`` (a date,
or the part of one a record gives: ``2019``, ``2019-09``; a record with no date reads
"undated", never year 1), ``moment`` (a date and time, in the machine's own time zone) and
``month`` (``2024-03`` as "Mar 2024").
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from importlib.resources import files

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_skeleton
from babel.numbers import format_currency, format_decimal
from flask import Flask, current_app, request
from flask_babel import Babel, get_locale, gettext

from connectors.fhir import UNDATED
from pds.errors import ConfigError

DEFAULT = "en_GB"
TRANSLATIONS = files("pds.http.web") / "translations"


def checked(chosen: str | None) -> str | None:
    """PDS_LOCALE as Babel writes it (``de-DE`` → ``de_DE``); one CLDR does not know is a
    :class:`~pds.errors.ConfigError` (``pds serve`` checks it before it unlocks the vault)."""
    if not chosen:
        return None
    try:
        Locale.parse(chosen.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        raise ConfigError(
            f"PDS_LOCALE={chosen!r} is not a locale pds knows",
            hint="Set PDS_LOCALE to a language and region such as en_GB, de_DE or fr_FR, "
            "or leave it unset to follow the browser.",
        ) from None
    return chosen.replace("-", "_")


def init_app(app: Flask, chosen: str | None) -> None:
    """Set up Flask-Babel and the filters; a PDS_LOCALE CLDR does not know stops here."""
    app.config["PDS_LOCALE"] = checked(chosen)
    app.config["BABEL_DEFAULT_LOCALE"] = DEFAULT
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    Babel(app, locale_selector=_select)
    for name, function in FILTERS.items():
        app.add_template_filter(function, name)


def _select() -> str:
    chosen = current_app.config.get("PDS_LOCALE")
    if chosen:
        return chosen
    for wanted, _quality in request.accept_languages:
        try:
            return str(Locale.parse(wanted.replace("-", "_")))
        except (ValueError, UnknownLocaleError):
            continue
    return DEFAULT


def _decimal(value: object) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def money(amount: object, currency: str | None = None) -> str:
    """``-12.5, "GBP"`` → ``-£12.50`` (en_GB); with no currency, two decimals at least."""
    value = _decimal(amount)
    if value is None:
        return "" if amount is None else str(amount)
    if currency:
        try:
            return format_currency(value, currency, locale=get_locale())
        except (ValueError, KeyError):  # not an ISO 4217 code Babel knows
            pass
    digits = max(2, -value.as_tuple().exponent) if value.is_finite() else 2
    text = format_decimal(value, format=f"#,##0.{'0' * digits}", locale=get_locale())
    return f"{text} {currency}" if currency else text


def number(value: object, digits: int | None = None) -> str:
    """A number written for the locale (``1,234.5``); ``digits`` fixes the decimals."""
    d = _decimal(value)
    if d is None:
        return "" if value is None else str(value)
    if digits is not None:
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(d, format=pattern, locale=get_locale())
    return format_decimal(d, locale=get_locale())


def undated(value: object) -> bool:
    """True for a record with no date: none given, or the importer's sort key for one."""
    return value is None or value == "" or str(value).startswith(UNDATED)


def day(value: object) -> str:
    """A date as the locale writes it; ``2019`` and ``2019-09`` as given, to that precision."""
    if undated(value):
        return gettext("undated")
    text = str(value)
    try:
        if len(text) == 4:
            return format_skeleton("y", date(int(text), 1, 1), locale=get_locale())
        if len(text) == 7:
            return format_skeleton(
                "yMMM", date(int(text[:4]), int(text[5:7]), 1), locale=get_locale()
            )
        return format_date(date.fromisoformat(text[:10]), "medium", locale=get_locale())
    except ValueError:
        return text


def moment(value: object) -> str:
    """A date and time, in this machine's time zone; a bare date as :func:`day` writes it."""
    if undated(value):
        return gettext("undated")
    text = str(value)
    if len(text) <= 10:
        return day(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if when.tzinfo is not None:
        when = when.astimezone()
    return format_datetime(when, "medium", locale=get_locale())


def month(value: str) -> str:
    """``2024-03`` → ``Mar 2024`` (en)."""
    try:
        return format_skeleton(
            "yMMM", date(int(value[:4]), int(value[5:7]), 1), locale=get_locale()
        )
    except (ValueError, IndexError):
        return value


FILTERS = {"money": money, "number": number, "day": day, "moment": moment, "month": month}
