"""What the benchmark scripts share: the machine report, the spread of repeated runs, and
running a child process with its wall time and peak memory."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

# The scripts here are named after what they measure, and one is ``connectors.py``: with this
# folder first on ``sys.path`` (as it is for a script), pds's own ``connectors`` package would
# be shadowed (an editable install finds pds's packages after the path entries). Every script
# imports this module first, so take the folder off the path here; ``load_helper`` loads the
# private helper modules by file.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]


def load_helper(name: str) -> Any:
    """The helper module ``benchmarks/<name>.py`` (e.g. ``_api_server``), loaded by file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, _HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MB = 1024 * 1024
PASSPHRASE = "benchmark passphrase: orchid kettle"  # noqa: S105 - throwaway vaults


def machine(**dists: str) -> dict[str, Any]:
    """Date, CPUs, CPU model, memory, Python, SQLite, and the versions of ``dists``
    (report key -> distribution name), e.g. ``machine(sqlite_utils="sqlite-utils")``."""

    def first(path: str, prefix: str) -> str:
        try:
            with open(path) as fh:
                for line in fh:
                    if line.startswith(prefix):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "unknown"

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": first("/proc/cpuinfo", "model name"),
        "memory": first("/proc/meminfo", "MemTotal"),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cryptography": version("cryptography"),
        **{key: version(dist) for key, dist in dists.items()},
        "platform": platform.platform(),
    }


def filesystem(path: Path) -> str:
    """The type of the filesystem holding ``path`` (fsync cost depends on it)."""
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts") as fh:
            for line in fh:
                parts = line.split()
                mount = parts[1]
                if str(path).startswith(mount) and len(mount) > len(best):
                    best, kind = mount, f"{parts[2]} on {parts[0]} ({mount})"
    except OSError:
        pass
    return kind


def spread(values: list[float]) -> dict[str, Any]:
    """Median, min, max and spread (%) of repeated measurements."""
    med = statistics.median(values)
    return {
        "median": med,
        "min": min(values),
        "max": max(values),
        "spread_pct": (max(values) - min(values)) / med * 100 if med else 0.0,
        "runs": values,
    }


def pds_executable() -> str:
    """The ``pds`` command of this environment."""
    beside = Path(sys.executable).with_name("pds")
    if beside.exists():
        return str(beside)
    found = shutil.which("pds")
    if found is None:
        raise SystemExit("the pds command is not installed (run make bench, or pip install -e .)")
    return found


def pds_env(home: Path) -> dict[str, str]:
    """The environment for a ``pds`` subprocess on the throwaway vault in ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PDS_")}
    env.update({"PDS_HOME": str(home), "PDS_PASSPHRASE": PASSPHRASE})
    return env


def run_measured(cmd: Sequence[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd``; its wall time, exit code, max RSS (kernel rusage via wait4) and output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{stdout}\n{stderr}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "max_rss_mb": usage.ru_maxrss * 1024 / MB,  # ru_maxrss is in KiB on Linux
        "stdout": stdout,
    }


def verdicts(summary: list[dict[str, Any]]) -> list[str]:
    """One report line per target: metric, value, target, met or NOT met (or no target,
    when ``met`` is None)."""
    word = {True: "met", False: "NOT met", None: "no target"}
    return [
        f"  {s['metric']}: {s['value']} (target {s['target']}): {word[s['met']]}" for s in summary
    ]


def finish(result: dict[str, Any], text: str, json_out: str | None) -> int:
    """Print the report and, when asked, write the results as JSON (run.py reads it)."""
    print(text)
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0
