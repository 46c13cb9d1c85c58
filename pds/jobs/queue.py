"""Queueing a job and reading it back: the ``jobs`` rows as a job's page shows them.

A request queues an import of a stored upload (:func:`queue_import`) or an export
(:func:`queue_export`) and answers at once; the job page reads :func:`get`, and a finished
export's zip is found by :func:`export_file` and deleted by :func:`remove_export`.

Secrecy. A job's row holds in plaintext only what ``sources`` holds already: the file's
name, the connector, counts. Its messages (an error names a row and may quote it, a
summary lists the rows left out) are sealed with AES-GCM (:func:`seal`) under a key
derived from the master key and the row's random salt, as the records are.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pds.clock import now_iso
from pds.db import jobs as db_jobs
from pds.db import transaction
from pds.errors import NotFound
from pds.jobs.files import read_progress, relative, unlink

if TYPE_CHECKING:
    from pds.vault import Vault

MAX_NAME_BYTES = 200
"""The longest file name a job keeps (in bytes of UTF-8); a file system takes 255."""
BUSY = "pds is busy with another import; nothing was kept from this request"
BUSY_HINT = "Wait until the running import is done (its page shows it), then try again."
EXPORT_GONE = (
    "this export's file is no longer on the server (was the vault restored from a backup?)"
)
EXPORT_GONE_HINT = "Export again."


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


# -- sealing --------------------------------------------------------------------------------


def _aead(vault: Vault, salt: bytes) -> AESGCM:
    return AESGCM(vault.derived_secret("jobs", salt))


def seal(vault: Vault, job_id: int, salt: bytes, doc: dict[str, Any]) -> bytes:
    """The job's messages ``doc``, sealed under its salt (nonce + ciphertext)."""
    nonce = secrets.token_bytes(12)
    plain = json.dumps(doc, separators=(",", ":")).encode()
    return nonce + _aead(vault, salt).encrypt(nonce, plain, f"pds/jobs/{job_id}".encode())


def unseal(vault: Vault, job_id: int, salt: bytes, sealed: bytes | None) -> dict[str, Any]:
    """The job's messages (empty when it has none)."""
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
        return db_jobs.insert_import(
            conn,
            now_iso(),
            relative(settings, stored),
            filename,
            connector,
            skip_bad,
            stored.stat().st_size,
            secrets.token_bytes(16),
        )


def queue_export(vault: Vault) -> int:
    """Queue an export of the whole vault; its id."""
    with transaction(vault.conn) as conn:
        return db_jobs.insert_export(conn, now_iso(), secrets.token_bytes(16))


def get(vault: Vault, job_id: int) -> Job:
    """The job ``job_id``, with a running import's latest progress; NotFound if none."""
    row = db_jobs.job_row(vault.conn, job_id)
    if row is None:
        raise NotFound(f"there is no job {job_id}")
    messages = unseal(vault, job_id, row["salt"], row["sealed"])
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
    row = db_jobs.export_output(vault.conn, job_id)
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
        path = db_jobs.mark_output_removed(conn, job_id, now_iso())
    if path:
        unlink(vault.settings, path)
