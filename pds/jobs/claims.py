"""Claiming jobs: one at a time per vault, in the order they were queued, and again after a
crash.

The claim is an ``UPDATE ... WHERE state = 'queued' ... RETURNING`` inside ``BEGIN
IMMEDIATE`` (:func:`claim`), so two processes never run the same job, and it claims nothing
while another job runs. A claim names its process (boot id, pid and the process's start
time, read from ``/proc``: :func:`process_token`). A job left ``running`` by a process that
no longer exists (a server killed or restarted mid-import; its transaction was rolled back
by SQLite) is queued again by any worker that sees it (:func:`requeue_orphans`), and run
again: an import is all or nothing and importing a file twice adds nothing. After
:data:`MAX_ATTEMPTS` such restarts the job fails instead, so a file that kills its worker
cannot loop forever.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pds.clock import now_iso
from pds.db import jobs as db_jobs
from pds.db import transaction
from pds.jobs.files import progress_path, remove_named, unlink
from pds.jobs.queue import seal

if TYPE_CHECKING:
    from pds.vault import Vault

MAX_ATTEMPTS = 3
log = logging.getLogger("pds.jobs")


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
    if not db_jobs.any_queued(conn):
        return None
    with transaction(conn):
        row = db_jobs.claim_next(conn, now_iso(), process_token())
    return (row[0], row[1]) if row else None


def requeue_orphans(vault: Vault) -> list[int]:
    """Queue again the jobs left ``running`` by a process that is gone; the ids. A job
    whose process died :data:`MAX_ATTEMPTS` times fails instead."""
    conn = vault.conn
    again = []
    for job_id, token, attempts, salt, input_path in db_jobs.running_jobs(conn):
        if alive(token):
            continue
        if attempts >= MAX_ATTEMPTS:
            message = {
                "error": f"the server stopped {attempts} times while running this job; "
                "nothing was kept",
                "hint": "Use `pds import FILE` (or `pds export`) on the server to see why.",
            }
            with transaction(conn):
                gone = db_jobs.fail_claimed(
                    conn, job_id, token, now_iso(), seal(vault, job_id, salt, message)
                )
            if gone:
                unlink(vault.settings, input_path)
                remove_named(vault.settings, job_id)
                progress_path(vault.settings, job_id).unlink(missing_ok=True)
            continue
        with transaction(conn):
            moved = db_jobs.requeue_claimed(conn, job_id, token)
        if moved:
            log.warning("job %d was left running by a stopped server; it runs again", job_id)
            again.append(job_id)
    return again
