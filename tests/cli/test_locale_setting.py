"""PDS_LOCALE at ``pds serve``: one CLDR does not know stops the server before it starts, in
one line and its hint; a good one (``de-DE`` as the browser writes it) is taken as Babel
writes it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pds.errors import ConfigError
from pds.http.locale import checked

HINT = (
    "Set PDS_LOCALE to a language and region such as en_GB, de_DE or fr_FR, "
    "or leave it unset to follow the browser."
)


@pytest.mark.parametrize("value", ["zz_QQ", "english", "de_XX_y", "../de"])
def test_a_locale_cldr_does_not_know_is_refused(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        checked(value)
    assert (caught.value.message, caught.value.hint) == (
        f"PDS_LOCALE={value!r} is not a locale pds knows",
        HINT,
    )


@pytest.mark.parametrize(
    ("value", "taken"), [(None, None), ("", None), ("de-DE", "de_DE"), ("fr_FR", "fr_FR")]
)
def test_a_known_locale_is_taken_as_babel_writes_it(value: str | None, taken: str | None) -> None:
    assert checked(value) == taken


def test_a_bad_locale_stops_pds_serve_in_one_line(tmp_path: Path) -> None:
    env = {"PDS_HOME": str(tmp_path / "home"), "PDS_LOCALE": "zz_QQ", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "pds", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == f"Error: PDS_LOCALE='zz_QQ' is not a locale pds knows\nHint: {HINT}\n"
    assert not (tmp_path / "home").exists()
