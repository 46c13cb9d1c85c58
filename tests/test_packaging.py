"""What ships: a real wheel carries the templates, static files and connector entry points,
and the Dockerfile passes hadolint."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_dockerfile_runs_as_non_root_with_data_volume() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "\nUSER 10001:10001\n" in text
    assert 'VOLUME ["/data"]' in text
    assert "HEALTHCHECK" in text
    assert 'CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]' in text


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
