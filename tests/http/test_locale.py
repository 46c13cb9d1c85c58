"""Dates, amounts and numbers as the owner's locale writes them (pds.http.locale): the
locale chosen by PDS_LOCALE, else the browser's Accept-Language, else British English."""

from __future__ import annotations

from pathlib import Path

import pytest

from pds.errors import ConfigError
from pds.http import locale
from pds.http.app import create_app
from pds.settings import Settings


@pytest.fixture
def app(tmp_path: Path):
    return create_app(Settings(home=tmp_path))


def written(app, accept: str | None = None) -> list[str]:
    headers = {"Accept-Language": accept} if accept else {}
    with app.test_request_context(headers=headers):
        return [
            locale.money("-1234.5", "EUR"),
            locale.money("12.5", "GBP"),
            locale.money("3", None),
            locale.money("0.125", None),
            locale.number("1234.567"),
            locale.number("2", 1),
            locale.day("2019-09-05"),
            locale.day("2019-09"),
            locale.day("2019"),
            locale.day("2019-09-05T10:00:00Z"),
            locale.month("2024-03"),
        ]


def test_british_english_when_the_browser_says_nothing(app) -> None:
    assert written(app) == [
        "-€1,234.50",
        "£12.50",
        "3.00",
        "0.125",
        "1,234.567",
        "2.0",
        "5 Sept 2019",
        "Sept 2019",
        "2019",
        "5 Sept 2019",
        "Mar 2024",
    ]


def test_the_browsers_language_sets_the_formats(app) -> None:
    assert written(app, "de-DE,de;q=0.9,en;q=0.5") == [
        "-1.234,50\xa0€",
        "12,50\xa0£",
        "3,00",
        "0,125",
        "1.234,567",
        "2,0",
        "05.09.2019",
        "Sept. 2019",
        "2019",
        "05.09.2019",
        "März 2024",
    ]


def test_a_language_cldr_does_not_know_is_passed_over(app) -> None:
    assert written(app, "xx-YY, fr-FR;q=0.8")[0] == "-1\u202f234,50\xa0€"


def test_pds_locale_wins_over_the_browser(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path, locale="en-US"))
    assert written(app, "de-DE")[6] == "Sep 5, 2019"


def test_a_record_without_a_date_is_undated_never_year_one(app) -> None:
    with app.test_request_context():
        assert [locale.day(v) for v in (None, "", "0001-01-01")] == ["undated"] * 3
        assert locale.moment("0001-01-01T00:00:00Z") == "undated"
        assert locale.day("not a date") == "not a date"
        assert locale.money(None, "GBP") == ""
        assert locale.money("n/a", "GBP") == "n/a"


def test_an_unknown_pds_locale_stops_the_app_with_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        create_app(Settings(home=tmp_path, locale="klingon"))
    assert caught.value.message == "PDS_LOCALE='klingon' is not a locale pds knows"
    assert caught.value.hint == (
        "Set PDS_LOCALE to a language and region such as en_GB, de_DE or fr_FR, "
        "or leave it unset to follow the browser."
    )
