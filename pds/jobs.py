"""Background jobs: a web upload's import and the web export, run outside the request.

A request stores what the job needs (an uploaded file under ``$PDS_HOME/jobs/``, mode
0600, under a generated name), adds a ``queued`` row to the ``jobs`` table and answers at
once. One thread per server process (:func:`ensure_worker`) claims queued jobs, one at a
time: the claim is an ``UPDATE ... WHERE state = 'queued' ... RETURNING`` inside ``BEGIN
IMMEDIATE``, so two processes never run the same job, and it claims nothing while another
job runs, so jobs run one at a time in the order they were queued. The import is
:func:`pds.importer.import_file`, the same code and the same messages as ``pds import``;
the export is :func:`pds.rights.export.write_zip` and its access-log entry, as ``pds export``.

Progress. An import holds the vault's write transaction from its first record to its
last (all or nothing), so nothing it writes to the table is seen by others until it ends.
Its progress (bytes read of the file) therefore goes to a small file beside the job,
``$PDS_HOME/jobs/<id>.progress``, rewritten at most every :data:`PROGRESS_SECONDS`; the
final values go into the row when the job ends, and the file is removed.

Restarts. A claim names its process (boot id, pid and the process's start time, read from
``/proc``). A job left ``running`` by a process that no longer exists (a server killed or
restarted mid-import; its transaction was rolled back by SQLite) is queued again by any
worker that sees it, and run again: an import is all or nothing and importing a file twice
adds nothing. After :data:`MAX_ATTEMPTS` such restarts the job fails instead, so a file
that kills its worker cannot loop forever. An import that finds the vault held by another
writer (``pds import`` in the foreground) longer than a writer waits goes back to the
queue, its file kept.

Files. The uploaded file is plaintext on disk until its job ends, done or failed; then it
is deleted. An export's zip (decrypted, like the one ``pds export`` writes) is deleted when
its download starts, or :data:`KEEP_EXPORT_SECONDS` after it was made if it never is. Files under
``jobs/`` that no job refers to (an upload cut off mid-way) are deleted after the same
time.

Secrecy. A job's row holds in plaintext only what ``sources`` holds already: the file's
name, the connector, counts. Its messages (an error names a row and may quote it, a
summary lists the rows left out) are sealed with AES-GCM under a key derived from the
master key and the row's random salt, as the records are.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pds.background import ProcessThread
from pds.clock import now_iso
from pds.db import locking, transaction
from pds.diskfull import reporting_disk_full
from pds.errors import NotFound, PdsError

if TYPE_CHECKING:
    from pds.settings import Settings
    from pds.vault import Vault

FOLDER = "jobs"
POLL_SECONDS = 0.5
PROGRESS_SECONDS = 0.25
KEEP_EXPORT_SECONDS = 24 * 3600
MAX_ATTEMPTS = 3
BUSY_TRIES = 30
MAX_NAME_BYTES = 200
"""The longest file name a job keeps (in bytes of UTF-8); a file system takes 255."""
UNEXPECTED = "pds could not import this file (an unexpected error); nothing was stored."
UNEXPECTED_HINT = "Check that the file is the export you meant; if it is, report a bug."
BUSY = "pds is busy with another import; nothing was kept from this request"
BUSY_HINT = "Wait until the running import is done (its page shows it), then try again."
GONE = (
    "the uploaded file is no longer on the server (was the vault restored from a backup?); "
    "nothing was imported"
)
GONE_HINT = "Upload the file again."
EXPORT_GONE = (
    "this export's file is no longer on the server (was the vault restored from a backup?)"
)
EXPORT_GONE_HINT = "Export again."
EXPORT_UNEXPECTED = "pds could not write the export (an unexpected error); nothing was kept."
EXPORT_UNEXPECTED_HINT = "Export again; if it fails again, report a bug."
log = logging.getLogger("pds.jobs")

_SELECT = (
    "SELECT kind, state, created_at, started_at, finished_at, attempts, filename, connector, "
    "skip_bad, bytes_total, bytes_done, records, result, salt, sealed, output_path, "
    "output_name, output_removed_at FROM jobs WHERE id = ?"
)


@dataclass
class Job:
    """One job as its page shows it (messages unsealed)."""

    id: int
    kind: str
    state: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    attempts: int
    filename: str | None
    connector: str | None
    skip_bad: bool
    bytes_total: int | None
    bytes_done: int
    records: int | None
    result: dict[str, Any] | None
    error: str | None = None
    hint: str | None = None
    rejected_rows: list[str] = field(default_factory=list)
    output_name: str | None = None
    output_ready: bool = False
    output_removed_at: str | None = None
    output_missing: bool = False

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    @property
    def percent(self) -> int | None:
        if not self.bytes_total:
            return None
        return min(100, self.bytes_done * 100 // self.bytes_total)

    def as_dict(self) -> dict[str, Any]:
        """What the job page's JSON says (``GET /jobs/<id>.json``)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "file": self.filename,
            "bytes_total": self.bytes_total,
            "bytes_done": self.bytes_done,
            "percent": self.percent,
            "records": self.records,
            "result": self.result,
            "error": self.error,
            "hint": self.hint,
            "download": self.output_ready,
        }


# -- files ----------------------------------------------------------------------------------


def folder(settings: Settings) -> Path:
    """``$PDS_HOME/jobs``, made (mode 0700) if missing."""
    path = settings.home / FOLDER
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def new_file(settings: Settings, prefix: str, suffix: str) -> tuple[int, Path]:
    """A new empty file (mode 0600) with a generated name in the jobs folder: (fd, path)."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder(settings))
    return fd, Path(name)


def _relative(settings: Settings, path: Path) -> str:
    return str(path.relative_to(settings.home))


def _unlink(settings: Settings, relative: str | None) -> None:
    if relative:
        with contextlib.suppress(FileNotFoundError):
            (settings.home / relative).unlink()


def _remove_named(settings: Settings, job_id: int) -> None:
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


# -- sealing --------------------------------------------------------------------------------


def _aead(vault: Vault, salt: bytes) -> AESGCM:
    return AESGCM(vault.derived_secret("jobs", salt))


def _seal(vault: Vault, job_id: int, salt: bytes, doc: dict[str, Any]) -> bytes:
    nonce = secrets.token_bytes(12)
    plain = json.dumps(doc, separators=(",", ":")).encode()
    return nonce + _aead(vault, salt).encrypt(nonce, plain, f"pds/jobs/{job_id}".encode())


def _unseal(vault: Vault, job_id: int, salt: bytes, sealed: bytes | None) -> dict[str, Any]:
    if not sealed:
        return {}
    aad = f"pds/jobs/{job_id}".encode()
    return json.loads(_aead(vault, salt).decrypt(sealed[:12], sealed[12:], aad))


# -- queueing and reading -------------------------------------------------------------------


def short_name(name: str, limit: int = MAX_NAME_BYTES) -> str:
    """``name`` cut to at most ``limit`` bytes of UTF-8, never inside a character, its
    extension kept (connectors tell formats by it) and the cut marked by "…"
    (``"statement-…-2024.csv"`` stays whole; 5,000 "a"s and ``.csv`` become 195 "a"s,
    "…" and ``.csv``). An extension longer than 16 bytes is not kept apart."""
    if len(name.encode()) <= limit:
        return name
    stem, suffix = os.path.splitext(name)
    if len(suffix.encode()) > 16:
        stem, suffix = name, ""
    room = limit - len(suffix.encode()) - len("…".encode())
    return stem.encode()[:room].decode(errors="ignore") + "…" + suffix


def queue_import(
    vault: Vault, stored: Path, filename: str, connector: str | None, skip_bad: bool
) -> int:
    """Queue the import of ``stored`` (a file in the jobs folder) as ``filename`` (cut by
    :func:`short_name`: it also names the file's link the importer reads); its id."""
    settings = vault.settings
    filename = short_name(filename)
    with transaction(vault.conn) as conn:
        return conn.execute(
            "INSERT INTO jobs (kind, created_at, input_path, filename, connector, skip_bad, "
            "bytes_total, salt) VALUES ('import', ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                now_iso(),
                _relative(settings, stored),
                filename,
                connector,
                int(skip_bad),
                stored.stat().st_size,
                secrets.token_bytes(16),
            ),
        ).fetchone()[0]


def queue_export(vault: Vault) -> int:
    """Queue an export of the whole vault; its id."""
    with transaction(vault.conn) as conn:
        return conn.execute(
            "INSERT INTO jobs (kind, created_at, salt) VALUES ('export', ?, ?) RETURNING id",
            (now_iso(), secrets.token_bytes(16)),
        ).fetchone()[0]


def get(vault: Vault, job_id: int) -> Job:
    """The job ``job_id``, with a running import's latest progress; NotFound if none."""
    cur = vault.conn.execute(_SELECT, (job_id,))
    found = cur.fetchone()
    if found is None:
        raise NotFound(f"there is no job {job_id}")
    row = dict(zip((c[0] for c in cur.description), found, strict=True))
    messages = _unseal(vault, job_id, row["salt"], row["sealed"])
    done, total = row["bytes_done"], row["bytes_total"]
    if row["state"] == "running" and (progress := read_progress(vault.settings, job_id)):
        done, total = progress
    kept = bool(row["output_path"]) and row["output_removed_at"] is None
    present = kept and (vault.settings.home / row["output_path"]).is_file()
    return Job(
        id=job_id,
        kind=row["kind"],
        state=row["state"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        attempts=row["attempts"],
        filename=row["filename"],
        connector=row["connector"],
        skip_bad=bool(row["skip_bad"]),
        bytes_total=total,
        bytes_done=done,
        records=row["records"],
        result=json.loads(row["result"]) if row["result"] else None,
        error=messages.get("error"),
        hint=messages.get("hint"),
        rejected_rows=messages.get("rejected_rows", []),
        output_name=row["output_name"],
        output_ready=present,
        output_removed_at=row["output_removed_at"],
        output_missing=kept and not present,
    )


def export_file(vault: Vault, job_id: int) -> tuple[Path, str]:
    """A finished export's zip and its download name; NotFound if there is none (any
    more)."""
    row = vault.conn.execute(
        "SELECT output_path, output_name FROM jobs WHERE id = ? AND kind = 'export' "
        "AND state = 'done' AND output_removed_at IS NULL",
        (job_id,),
    ).fetchone()
    if row is not None and row[0] and not (vault.settings.home / row[0]).is_file():
        raise NotFound(EXPORT_GONE, hint=EXPORT_GONE_HINT)
    if row is None or not row[0]:
        raise NotFound(
            f"the export of job {job_id} is not here (any more)",
            hint="An export is kept until it is downloaded, or a day; export again.",
        )
    return vault.settings.home / row[0], row[1]


def remove_export(vault: Vault, job_id: int) -> None:
    """Delete a finished export's zip (downloaded, or too old) and say so in its row."""
    with transaction(vault.conn) as conn:
        row = conn.execute(
            "UPDATE jobs SET output_removed_at = ? WHERE id = ? AND output_path IS NOT NULL "
            "AND output_removed_at IS NULL RETURNING output_path",
            (now_iso(), job_id),
        ).fetchone()
    if row:
        _unlink(vault.settings, row[0])


# -- claiming -------------------------------------------------------------------------------


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "-"


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot) from /proc; None if it is gone
    (or there is no /proc: then "-")."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None if Path("/proc/self/stat").exists() else "-"
    except OSError:
        return "-"
    return stat.rsplit(")", 1)[1].split()[19]


def process_token(pid: int | None = None) -> str:
    """This process (or ``pid``) as a claim names it: boot id, pid, start time."""
    pid = os.getpid() if pid is None else pid
    return f"{_boot_id()}/{pid}/{_start_time(pid) or '-'}"


def alive(token: str | None) -> bool:
    """True while the process a claim names still runs (on this machine, since this boot)."""
    try:
        boot, pid_text, started = (token or "").split("/")
        pid = int(pid_text)
    except ValueError:
        return False
    if boot != _boot_id():
        return False
    now = _start_time(pid)
    if now is None:
        return False
    if now == "-" or started == "-":
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return now == started


def claim(vault: Vault) -> tuple[int, str] | None:
    """The oldest queued job, now ``running`` and claimed by this process: (id, kind);
    None while another job runs. One job at a time per vault, in the order they were
    queued: imports serialise on the vault's write lock anyway, and the same file uploaded
    twice must be "new" in the first job and "already present" in the second, whichever
    server process claims which. Looks first without the write lock: the common case,
    nothing queued, takes no lock."""
    conn = vault.conn
    if conn.execute("SELECT 1 FROM jobs WHERE state = 'queued' LIMIT 1").fetchone() is None:
        return None
    with transaction(conn):
        row = conn.execute(
            "UPDATE jobs SET state = 'running', started_at = ?, attempts = attempts + 1, "
            "claimed_by = ? WHERE id = (SELECT id FROM jobs WHERE state = 'queued' "
            "ORDER BY id LIMIT 1) AND state = 'queued' "
            "AND NOT EXISTS (SELECT 1 FROM jobs WHERE state = 'running') RETURNING id, kind",
            (now_iso(), process_token()),
        ).fetchone()
    return (row[0], row[1]) if row else None


def requeue_orphans(vault: Vault) -> list[int]:
    """Queue again the jobs left ``running`` by a process that is gone; the ids. A job
    whose process died :data:`MAX_ATTEMPTS` times fails instead."""
    conn = vault.conn
    rows = conn.execute(
        "SELECT id, claimed_by, attempts, salt, input_path FROM jobs WHERE state = 'running'"
    ).fetchall()
    again = []
    for job_id, token, attempts, salt, input_path in rows:
        if alive(token):
            continue
        if attempts >= MAX_ATTEMPTS:
            message = {
                "error": f"the server stopped {attempts} times while running this job; "
                "nothing was kept",
                "hint": "Use `pds import FILE` (or `pds export`) on the server to see why.",
            }
            with transaction(conn):
                gone = conn.execute(
                    "UPDATE jobs SET state = 'failed', finished_at = ?, sealed = ?, "
                    "claimed_by = NULL WHERE id = ? AND state = 'running' AND claimed_by IS ?",
                    (now_iso(), _seal(vault, job_id, salt, message), job_id, token),
                ).rowcount
            if gone:
                _unlink(vault.settings, input_path)
                _remove_named(vault.settings, job_id)
                progress_path(vault.settings, job_id).unlink(missing_ok=True)
            continue
        with transaction(conn):
            moved = conn.execute(
                "UPDATE jobs SET state = 'queued', claimed_by = NULL WHERE id = ? "
                "AND state = 'running' AND claimed_by IS ?",
                (job_id, token),
            ).rowcount
        if moved:
            log.warning("job %d was left running by a stopped server; it runs again", job_id)
            again.append(job_id)
    return again


# -- running --------------------------------------------------------------------------------


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
    (salt,) = conn.execute("SELECT salt FROM jobs WHERE id = ?", (job_id,)).fetchone()
    sealed = _seal(vault, job_id, salt, messages) if messages else None
    _retry_busy(
        lambda: _update(
            conn,
            "UPDATE jobs SET state = ?, finished_at = ?, result = ?, sealed = ?, records = ?, "
            "bytes_done = coalesce(?, bytes_done), output_path = ?, output_name = ?, "
            "input_path = NULL WHERE id = ?",
            (
                state,
                now_iso(),
                json.dumps(result) if result is not None else None,
                sealed,
                records,
                bytes_done,
                output[0] if output else None,
                output[1] if output else None,
                job_id,
            ),
        )
    )


def _update(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> None:
    with transaction(conn):
        conn.execute(sql, params)


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
    input_path, filename, connector, skip_bad, total = vault.conn.execute(
        "SELECT input_path, filename, connector, skip_bad, bytes_total FROM jobs WHERE id = ?",
        (job_id,),
    ).fetchone()
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
            _retry_busy(
                lambda: _update(
                    vault.conn,
                    "UPDATE jobs SET state = 'queued', claimed_by = NULL WHERE id = ?",
                    (job_id,),
                )
            )
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
        _remove_named(settings, job_id)
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
        output=(_relative(settings, path), exportmod.default_name(created_at)),
    )


def tidy(vault: Vault, now: datetime | None = None) -> int:
    """Delete exports older than :data:`KEEP_EXPORT_SECONDS` and files in the jobs folder
    that no job refers to and that are as old; how many files were deleted."""
    settings = vault.settings
    now = now or datetime.now(UTC)
    cutoff = (now - timedelta(seconds=KEEP_EXPORT_SECONDS)).isoformat(timespec="microseconds")
    removed = 0
    old = vault.conn.execute(
        "SELECT id FROM jobs WHERE output_path IS NOT NULL AND output_removed_at IS NULL "
        "AND finished_at < ?",
        (cutoff,),
    ).fetchall()
    for (job_id,) in old:
        remove_export(vault, job_id)
        removed += 1
    place = settings.home / FOLDER
    if not place.is_dir():
        return removed
    known = {
        row[0]
        for row in vault.conn.execute(
            "SELECT input_path FROM jobs WHERE input_path IS NOT NULL UNION "
            "SELECT output_path FROM jobs WHERE output_path IS NOT NULL "
            "AND output_removed_at IS NULL"
        )
    }
    oldest = now.timestamp() - KEEP_EXPORT_SECONDS
    for entry in place.iterdir():
        if not entry.is_file() or _relative(settings, entry) in known:
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
