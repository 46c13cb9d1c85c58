"""The SQL of background jobs (pds.jobs): the ``jobs`` table (schema 7).

Paths in a row are relative to ``$PDS_HOME``; ``sealed`` is the job's messages as pds.jobs
sealed them. The claim of the next queued job is an ``UPDATE ... RETURNING`` that the
caller runs inside ``pds.db.transaction`` (``BEGIN IMMEDIATE``), so two processes never
claim the same job. Nothing here opens a transaction of its own.
"""

from __future__ import annotations

import sqlite3
from typing import Any

JOB_COLUMNS = (
    "kind",
    "state",
    "created_at",
    "started_at",
    "finished_at",
    "attempts",
    "filename",
    "connector",
    "skip_bad",
    "bytes_total",
    "bytes_done",
    "records",
    "result",
    "salt",
    "sealed",
    "output_path",
    "output_name",
    "output_removed_at",
)


def insert_import(
    conn: sqlite3.Connection,
    created_at: str,
    input_path: str,
    filename: str,
    connector: str | None,
    skip_bad: bool,
    bytes_total: int,
    salt: bytes,
) -> int:
    """Queue the import of the stored file ``input_path``; the job's id."""
    return conn.execute(
        "INSERT INTO jobs (kind, created_at, input_path, filename, connector, skip_bad, "
        "bytes_total, salt) VALUES ('import', ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (created_at, input_path, filename, connector, int(skip_bad), bytes_total, salt),
    ).fetchone()[0]


def insert_export(conn: sqlite3.Connection, created_at: str, salt: bytes) -> int:
    """Queue an export; the job's id."""
    return conn.execute(
        "INSERT INTO jobs (kind, created_at, salt) VALUES ('export', ?, ?) RETURNING id",
        (created_at, salt),
    ).fetchone()[0]


def job_row(conn: sqlite3.Connection, job_id: int) -> dict[str, Any] | None:
    """The job ``job_id`` as a dict of :data:`JOB_COLUMNS`, or None."""
    found = conn.execute(
        f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs WHERE id = ?",  # noqa: S608 - constants only
        (job_id,),
    ).fetchone()
    return None if found is None else dict(zip(JOB_COLUMNS, found, strict=True))


def export_output(conn: sqlite3.Connection, job_id: int) -> tuple[str | None, str | None] | None:
    """(output path, download name) of the finished export ``job_id`` whose zip has not
    been removed, or None."""
    return conn.execute(
        "SELECT output_path, output_name FROM jobs WHERE id = ? AND kind = 'export' "
        "AND state = 'done' AND output_removed_at IS NULL",
        (job_id,),
    ).fetchone()


def mark_output_removed(conn: sqlite3.Connection, job_id: int, at: str) -> str | None:
    """Note that the job's output was removed at ``at``; its path, or None if it had none
    (or it was removed already)."""
    row = conn.execute(
        "UPDATE jobs SET output_removed_at = ? WHERE id = ? AND output_path IS NOT NULL "
        "AND output_removed_at IS NULL RETURNING output_path",
        (at, job_id),
    ).fetchone()
    return row[0] if row else None


def any_queued(conn: sqlite3.Connection) -> bool:
    """True if a job waits in the queue (a read)."""
    return conn.execute("SELECT 1 FROM jobs WHERE state = 'queued' LIMIT 1").fetchone() is not None


def claim_next(conn: sqlite3.Connection, at: str, token: str) -> tuple[int, str] | None:
    """Mark the oldest queued job ``running``, started at ``at`` and claimed by ``token``,
    unless a job runs already: (id, kind), or None. Run it inside the caller's write
    transaction."""
    return conn.execute(
        "UPDATE jobs SET state = 'running', started_at = ?, attempts = attempts + 1, "
        "claimed_by = ? WHERE id = (SELECT id FROM jobs WHERE state = 'queued' "
        "ORDER BY id LIMIT 1) AND state = 'queued' "
        "AND NOT EXISTS (SELECT 1 FROM jobs WHERE state = 'running') RETURNING id, kind",
        (at, token),
    ).fetchone()


def running_jobs(conn: sqlite3.Connection) -> list[tuple[int, str | None, int, bytes, str | None]]:
    """The running jobs: (id, claimed by, attempts, salt, input path)."""
    return conn.execute(
        "SELECT id, claimed_by, attempts, salt, input_path FROM jobs WHERE state = 'running'"
    ).fetchall()


def fail_claimed(
    conn: sqlite3.Connection, job_id: int, token: str | None, at: str, sealed: bytes
) -> bool:
    """Fail the job if it still runs under the claim ``token``; False if it does not."""
    return bool(
        conn.execute(
            "UPDATE jobs SET state = 'failed', finished_at = ?, sealed = ?, "
            "claimed_by = NULL WHERE id = ? AND state = 'running' AND claimed_by IS ?",
            (at, sealed, job_id, token),
        ).rowcount
    )


def requeue_claimed(conn: sqlite3.Connection, job_id: int, token: str | None) -> bool:
    """Queue the job again if it still runs under the claim ``token``; False if it does
    not."""
    return bool(
        conn.execute(
            "UPDATE jobs SET state = 'queued', claimed_by = NULL WHERE id = ? "
            "AND state = 'running' AND claimed_by IS ?",
            (job_id, token),
        ).rowcount
    )


def requeue(conn: sqlite3.Connection, job_id: int) -> None:
    """Queue the job again, unclaimed."""
    conn.execute("UPDATE jobs SET state = 'queued', claimed_by = NULL WHERE id = ?", (job_id,))


def job_salt(conn: sqlite3.Connection, job_id: int) -> bytes:
    """The random salt the job's messages are sealed under."""
    return conn.execute("SELECT salt FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]


def finish(
    conn: sqlite3.Connection,
    job_id: int,
    state: str,
    at: str,
    *,
    result: str | None,
    sealed: bytes | None,
    records: int | None,
    bytes_done: int | None,
    output_path: str | None,
    output_name: str | None,
) -> None:
    """End the job as ``state`` at ``at`` with its result (JSON text), sealed messages,
    counts and output; ``bytes_done`` None keeps the count stored. The input is
    forgotten."""
    conn.execute(
        "UPDATE jobs SET state = ?, finished_at = ?, result = ?, sealed = ?, records = ?, "
        "bytes_done = coalesce(?, bytes_done), output_path = ?, output_name = ?, "
        "input_path = NULL WHERE id = ?",
        (state, at, result, sealed, records, bytes_done, output_path, output_name, job_id),
    )


def import_input(
    conn: sqlite3.Connection, job_id: int
) -> tuple[str, str, str | None, int, int | None]:
    """What the import ``job_id`` reads: (input path, file name, connector, skip_bad,
    bytes total)."""
    return conn.execute(
        "SELECT input_path, filename, connector, skip_bad, bytes_total FROM jobs WHERE id = ?",
        (job_id,),
    ).fetchone()


def exports_finished_before(conn: sqlite3.Connection, cutoff: str) -> list[int]:
    """The ids of jobs whose output is still kept and that finished before ``cutoff``."""
    rows = conn.execute(
        "SELECT id FROM jobs WHERE output_path IS NOT NULL AND output_removed_at IS NULL "
        "AND finished_at < ?",
        (cutoff,),
    )
    return [row[0] for row in rows]


def files_in_use(conn: sqlite3.Connection) -> set[str]:
    """The paths of every input still to be read and every output still kept."""
    return {
        row[0]
        for row in conn.execute(
            "SELECT input_path FROM jobs WHERE input_path IS NOT NULL UNION "
            "SELECT output_path FROM jobs WHERE output_path IS NOT NULL "
            "AND output_removed_at IS NULL"
        )
    }
