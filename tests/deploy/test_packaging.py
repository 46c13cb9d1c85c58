"""What ships: a real wheel carries the templates, static files and connector entry points.
(The image: tests/deploy/test_container_files.py.)"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_wheel_ships_package_data(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-v",  # the build's own warnings too
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    said = result.stdout + result.stderr
    assert "Successfully built pds" in said
    assert "absent from the `packages` configuration" not in said  # data folders are listed
    (wheel,) = tmp_path.glob("pds-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        folder: sorted(n.rsplit("/", 1)[1] for n in names if n.rsplit("/", 1)[0] == folder)
        for folder in ("pds/http/web/templates", "connectors/csv_profiles", "pds_policies")
    }
    assert shipped["pds/http/web/templates"] == sorted(
        p.name for p in (ROOT / "pds" / "http" / "web" / "templates").glob("*.html")
    )
    assert shipped["connectors/csv_profiles"] == sorted(
        p.name for p in (ROOT / "connectors" / "csv_profiles").glob("*.toml")
    )
    assert len(shipped["connectors/csv_profiles"]) == 4
    assert shipped["pds_policies"] == sorted(
        p.name for p in (ROOT / "policies").iterdir() if p.suffix in (".toml", ".md", ".py")
    )
    assert "pds/http/web/templates/home.html" in names
    assert "pds_static/pds.css" in names
    assert "connectors/midata.py" in names
    assert "connectors/ofx.py" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry).decode()
    assert "[pds.connectors]" in text
    assert "midata = connectors.midata:MidataConnector" in text
    assert "pds = pds.cli:main" in text
