"""Running jobs: the server's job thread, an import's run, an export's run, and tidying.

One thread per server process (:data:`worker`) claims queued jobs (``pds.jobs.claims``)
and runs them. The import is :func:`pds.importer.import_file`, the same code and the same
messages as ``pds import``; the export is :func:`pds.rights.export.write_zip` and its
access-log entry, as ``pds export``. An import holds the vault's write transaction from its
first record to its last (all or nothing); its progress goes to the job's progress file
(``pds.jobs.files``) and the final values into the row when the job ends. An import that
finds the vault held by another writer (``pds import`` in the foreground) longer than a
writer waits goes back to the queue, its file kept.

Files. The uploaded file is plaintext on disk until its job ends, done or failed; then it
is deleted. An export's zip (decrypted, like the one ``pds export`` writes) is deleted when
its download starts, or :data:`KEEP_EXPORT_SECONDS` after it was made if it never is
(:func:`tidy`). Files under ``jobs/`` that no job refers to (an upload cut off mid-way) are
deleted after the same time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pds import clock
from pds.background import ProcessThread
from pds.clock import now_iso
from pds.db import jobs as db_jobs
from pds.db import locking, transaction
from pds.diskfull import reporting_disk_full
from pds.errors import PdsError
from pds.jobs.claims import claim, requeue_orphans
from pds.jobs.files import (
    FOLDER,
    PROGRESS_SECONDS,
    ProgressFile,
    folder,
    new_file,
    progress_path,
    relative,
    remove_named,
)
from pds.jobs.queue import remove_export, seal

if TYPE_CHECKING:
    from pds.vault import Vault

POLL_SECONDS = 0.5
KEEP_EXPORT_SECONDS = 24 * 3600
BUSY_TRIES = 30
UNEXPECTED = "pds could not import this file (an unexpected error); nothing was stored."
UNEXPECTED_HINT = "Check that the file is the export you meant; if it is, report a bug."
GONE = (
    "the uploaded file is no longer on the server (was the vault restored from a backup?); "
    "nothing was imported"
)
GONE_HINT = "Upload the file again."
EXPORT_UNEXPECTED = "pds could not write the export (an unexpected error); nothing was kept."
EXPORT_UNEXPECTED_HINT = "Export again; if it fails again, report a bug."
log = logging.getLogger("pds.jobs")


def run_once(vault: Vault) -> list[int]:
    """Run every queued job (and queue again those whose server died); the ids run."""
    requeue_orphans(vault)
    ran = []
    while (found := claim(vault)) is not None:
        job_id, kind = found
        if kind == "import":
            run_import(vault, job_id)
        else:
            run_export(vault, job_id)
        ran.append(job_id)
    return ran


def _finish(
    vault: Vault,
    job_id: int,
    state: str,
    *,
    result: dict[str, Any] | None = None,
    messages: dict[str, Any] | None = None,
    records: int | None = None,
    bytes_done: int | None = None,
    output: tuple[str, str] | None = None,
) -> None:
    conn = vault.conn
    salt = db_jobs.job_salt(conn, job_id)
    sealed = seal(vault, job_id, salt, messages) if messages else None
    _retry_busy(
        lambda: _write(
            conn,
            db_jobs.finish,
            job_id,
            state,
            now_iso(),
            result=json.dumps(result) if result is not None else None,
            sealed=sealed,
            records=records,
            bytes_done=bytes_done,
            output_path=output[0] if output else None,
            output_name=output[1] if output else None,
        )
    )


def _write(conn: sqlite3.Connection, write: Callable[..., None], *args: Any, **kw: Any) -> None:
    """``write(conn, *args, **kw)`` in a write transaction of its own."""
    with transaction(conn):
        write(conn, *args, **kw)


def _retry_busy(action: Callable[[], Any]) -> Any:
    """Run ``action`` (a write), again while another process holds the vault longer than a
    writer waits (each try waits about 20 s), up to :data:`BUSY_TRIES` times."""
    for attempt in range(1, BUSY_TRIES + 1):
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if not locking.is_busy(exc) or attempt == BUSY_TRIES:
                raise
            log.info("the vault is busy; writing the job's state again (try %d)", attempt + 1)
    return None


def run_import(vault: Vault, job_id: int, *, progress_every: float = PROGRESS_SECONDS) -> None:
    """Run the claimed import ``job_id``: the CLI's import of the stored file, under the
    name it was uploaded with; the file is deleted when the job ends."""
    from pds.importer import import_file

    settings = vault.settings
    input_path, filename, connector, skip_bad, total = db_jobs.import_input(vault.conn, job_id)
    stored = settings.home / input_path
    named = folder(settings) / f"{job_id}.d"
    progress = ProgressFile(progress_path(settings, job_id), total or 0, progress_every)
    again = False
    try:
        if not stored.is_file():  # a restored backup (or a copy) brought back the job only
            log.warning("job %d: the uploaded file is gone; the job failed", job_id)
            raise PdsError(GONE, hint=GONE_HINT)
        # The importer's messages name the file: give it its uploaded (safe) name, by a
        # hard link in a private folder, so they read as the CLI's do.
        named.mkdir(mode=0o700, exist_ok=True)
        target = named / filename
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        with reporting_disk_full(settings.home, "import again", "nothing was imported"):
            os.link(stored, target)
        summary = import_file(
            vault, target, connector=connector, skip_bad=bool(skip_bad), progress=progress
        )
    except Exception as exc:
        if locking.is_busy(exc):  # another process (`pds import`?) held the vault too long
            again = True
            log.warning("job %d: the vault is busy; the import is queued again", job_id)
            _retry_busy(lambda: _write(vault.conn, db_jobs.requeue, job_id))
            return
        if isinstance(exc, PdsError):
            messages = {"error": exc.message, "hint": exc.hint}
        else:  # a connector bug: the vault's transaction rolled back
            log.error("job %d: the import failed unexpectedly (%s)", job_id, type(exc).__name__)
            messages = {"error": UNEXPECTED, "hint": UNEXPECTED_HINT}
        _finish(vault, job_id, "failed", messages=messages, bytes_done=progress.done)
    else:
        doc = summary.as_dict()
        rows = doc.pop("rejected_rows")
        _finish(
            vault,
            job_id,
            "done",
            result=doc,
            messages={"rejected_rows": rows} if rows else None,
            records=summary.new + summary.duplicate,
            bytes_done=total,
        )
    finally:
        remove_named(settings, job_id)
        progress.path.unlink(missing_ok=True)
        if not again:
            stored.unlink(missing_ok=True)


def run_export(vault: Vault, job_id: int) -> None:
    """Run the claimed export ``job_id``: the zip of ``pds export`` in the jobs folder, and
    its ``export`` entry in the access log."""
    from pds.rights import export as exportmod

    settings = vault.settings
    created_at = now_iso()
    path: Path | None = None
    try:
        with reporting_disk_full(settings.home, "export again", "no export was written"):
            fd, path = new_file(settings, "export-", ".zip")
            with os.fdopen(fd, "wb") as fh:
                found = exportmod.write_zip(vault, fh, created_at)
                fh.flush()
                os.fsync(fh.fileno())
        _retry_busy(lambda: exportmod.audit(vault, found))
    except PdsError as exc:
        if path:
            path.unlink(missing_ok=True)
        _finish(vault, job_id, "failed", messages={"error": exc.message, "hint": exc.hint})
        return
    except Exception as exc:
        if path:
            path.unlink(missing_ok=True)
        log.error("job %d: the export failed unexpectedly (%s)", job_id, type(exc).__name__)
        messages = {"error": EXPORT_UNEXPECTED, "hint": EXPORT_UNEXPECTED_HINT}
        _finish(vault, job_id, "failed", messages=messages)
        return
    records = sum(found.values())
    _finish(
        vault,
        job_id,
        "done",
        result={"records": records, "categories": found},
        records=records,
        bytes_done=path.stat().st_size,
        output=(relative(settings, path), exportmod.default_name(created_at)),
    )


def tidy(vault: Vault, now: datetime | None = None) -> int:
    """Delete exports older than :data:`KEEP_EXPORT_SECONDS` and files in the jobs folder
    that no job refers to and that are as old; how many files were deleted."""
    settings = vault.settings
    now = now or clock.utcnow()
    cutoff = (now - timedelta(seconds=KEEP_EXPORT_SECONDS)).isoformat(timespec="microseconds")
    removed = 0
    for job_id in db_jobs.exports_finished_before(vault.conn, cutoff):
        remove_export(vault, job_id)
        removed += 1
    place = settings.home / FOLDER
    if not place.is_dir():
        return removed
    known = db_jobs.files_in_use(vault.conn)
    oldest = now.timestamp() - KEEP_EXPORT_SECONDS
    for entry in place.iterdir():
        if not entry.is_file() or relative(settings, entry) in known:
            continue
        with contextlib.suppress(FileNotFoundError):
            if entry.stat().st_mtime < oldest:
                entry.unlink()
                removed += 1
    return removed


# -- the server's background worker ---------------------------------------------------------

TIDY_SECONDS = 600.0


def _loop(settings: Any, keyring: Any, stop: threading.Event, woken: threading.Event) -> None:
    from pds.vault import Vault

    with Vault.with_keyring(settings, keyring) as vault:
        next_tidy = 0.0
        while not stop.is_set():
            try:
                if time.monotonic() >= next_tidy:
                    next_tidy = time.monotonic() + TIDY_SECONDS
                    tidy(vault)
                run_once(vault)
            except sqlite3.OperationalError as exc:  # another process holds the vault long
                log.debug("jobs: the vault is busy (%s); trying again", exc)
            except Exception:  # keep running; the owner sees a job's failure on its page
                log.exception("the job worker failed; retrying in %s s", POLL_SECONDS)
            woken.wait(POLL_SECONDS)
            woken.clear()


worker = ProcessThread("pds-jobs", "PDS_JOBS_WORKER", _loop)
ensure_worker = worker.ensure
"""Start this process's job thread once, under ``pds serve`` or with ``PDS_JOBS_WORKER``."""
wake = worker.wake
"""Have this process's job thread look for queued jobs now (not at its next poll)."""
stop_worker = worker.stop
"""Stop this process's job thread (if any) and wait for it to finish its job."""
