"""What ships: a real wheel carries the templates, static files and connector entry points.
(The image: tests/test_container_files.py.)"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("pds-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "pds/web/templates/home.html" in names
    assert "pds_static/pds.css" in names
    assert "connectors/midata.py" in names
    assert "connectors/ofx.py" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry).decode()
    assert "[pds.connectors]" in text
    assert "midata = connectors.midata:MidataConnector" in text
    assert "pds = pds.cli:main" in text
