"""The jobs folder, ``$PDS_HOME/jobs/``: uploads, exports and progress files.

A file here has a generated name and mode 0600. An import's progress (bytes read of the
file) goes to ``<id>.progress`` beside it, because the import's own write transaction hides
what it writes to the ``jobs`` table until it ends: :class:`ProgressFile` rewrites it at
most every :data:`PROGRESS_SECONDS`, atomically, and :func:`read_progress` reads it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pds.settings import Settings

FOLDER = "jobs"
PROGRESS_SECONDS = 0.25


def folder(settings: Settings) -> Path:
    """``$PDS_HOME/jobs``, made (mode 0700) if missing."""
    path = settings.home / FOLDER
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def new_file(settings: Settings, prefix: str, suffix: str) -> tuple[int, Path]:
    """A new empty file (mode 0600) with a generated name in the jobs folder: (fd, path)."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder(settings))
    return fd, Path(name)


def relative(settings: Settings, path: Path) -> str:
    """``path`` as a job's row names it: relative to ``$PDS_HOME``."""
    return str(path.relative_to(settings.home))


def unlink(settings: Settings, named: str | None) -> None:
    """Delete the file a job's row names (if it names one, and it is still there)."""
    if named:
        with contextlib.suppress(FileNotFoundError):
            (settings.home / named).unlink()


def remove_named(settings: Settings, job_id: int) -> None:
    """Delete the job's ``<id>.d`` folder (the upload's link under its own name)."""
    named = settings.home / FOLDER / f"{job_id}.d"
    if named.is_dir() and not named.is_symlink():
        for entry in named.iterdir():
            entry.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            named.rmdir()


def progress_path(settings: Settings, job_id: int) -> Path:
    return settings.home / FOLDER / f"{job_id}.progress"


class ProgressFile:
    """Bytes read so far, written to the job's progress file at most every ``every`` s
    (atomically: a reader sees the old or the new values, never half)."""

    def __init__(self, path: Path, total: int, every: float = PROGRESS_SECONDS):
        self.path = path
        self.total = total
        self.done = 0
        self._every = every
        self._next = 0.0

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self._every
            self.write()

    def write(self) -> None:
        tmp = self.path.with_suffix(".progress-tmp")
        data = json.dumps({"bytes_done": min(self.done, self.total), "bytes_total": self.total})
        with contextlib.suppress(OSError):  # progress is a courtesy; a full disk loses it
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(data)
            os.replace(tmp, self.path)


def read_progress(settings: Settings, job_id: int) -> tuple[int, int] | None:
    """(bytes done, bytes total) from a running job's progress file, if it has one."""
    try:
        found = json.loads(progress_path(settings, job_id).read_text())
        return int(found["bytes_done"]), int(found["bytes_total"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
