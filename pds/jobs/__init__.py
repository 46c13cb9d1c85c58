"""Background jobs: a web upload's import and the web export, run outside the request.

A request stores what the job needs (an uploaded file under ``$PDS_HOME/jobs/``, mode
0600, under a generated name), adds a ``queued`` row to the ``jobs`` table and answers at
once (:mod:`pds.jobs.queue`). One thread per server process (:func:`ensure_worker`,
:mod:`pds.jobs.runner`) claims queued jobs, one at a time: the claim is an ``UPDATE ...
WHERE state = 'queued' ... RETURNING`` inside ``BEGIN IMMEDIATE``, so two processes never
run the same job, and it claims nothing while another job runs, so jobs run one at a time
in the order they were queued (:mod:`pds.jobs.claims`, which also queues again the jobs of
a server that died). The import is :func:`pds.importer.import_file`, the same code and the
same messages as ``pds import``; the export is :func:`pds.rights.export.write_zip` and its
access-log entry, as ``pds export``.

Progress. An import holds the vault's write transaction from its first record to its
last (all or nothing), so nothing it writes to the table is seen by others until it ends.
Its progress (bytes read of the file) therefore goes to a small file beside the job,
``$PDS_HOME/jobs/<id>.progress`` (:mod:`pds.jobs.files`), rewritten at most every
``PROGRESS_SECONDS``; the final values go into the row when the job ends, and the file is
removed.

The modules: ``files`` (the jobs folder and progress files), ``queue`` (queueing, reading
and sealing a job's row), ``claims`` (who runs which job, and restarts), ``runner`` (the
thread, an import's and an export's run, tidying). The names the rest of pds uses are
importable from here.
"""

from __future__ import annotations

from pds.jobs.claims import MAX_ATTEMPTS, alive, claim, process_token, requeue_orphans
from pds.jobs.files import FOLDER, ProgressFile, folder, new_file, progress_path, read_progress
from pds.jobs.queue import (
    BUSY,
    BUSY_HINT,
    EXPORT_GONE,
    EXPORT_GONE_HINT,
    Job,
    export_file,
    get,
    queue_export,
    queue_import,
    remove_export,
    short_name,
)
from pds.jobs.runner import (
    KEEP_EXPORT_SECONDS,
    UNEXPECTED,
    UNEXPECTED_HINT,
    ensure_worker,
    run_export,
    run_import,
    run_once,
    stop_worker,
    tidy,
    wake,
    worker,
)

__all__ = [
    "BUSY",
    "BUSY_HINT",
    "EXPORT_GONE",
    "EXPORT_GONE_HINT",
    "FOLDER",
    "KEEP_EXPORT_SECONDS",
    "MAX_ATTEMPTS",
    "UNEXPECTED",
    "UNEXPECTED_HINT",
    "Job",
    "ProgressFile",
    "alive",
    "claim",
    "ensure_worker",
    "export_file",
    "folder",
    "get",
    "new_file",
    "process_token",
    "progress_path",
    "queue_export",
    "queue_import",
    "read_progress",
    "remove_export",
    "requeue_orphans",
    "run_export",
    "run_import",
    "run_once",
    "short_name",
    "stop_worker",
    "tidy",
    "wake",
    "worker",
]
