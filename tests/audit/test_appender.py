"""The access log's appender (``pds.audit.appender``): entries from many processes and
threads, each committed once and before its caller goes on; errors reach every caller of the
batch; without an appender, or once it is gone, callers append directly."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from pds.audit import appender
from pds.audit.appender import AccessLogUnavailable, Client
from pds.audit.log import canonical, make_entry
from pds.audit.verify import verify
from pds.db import lock_path
from pds.diskfull import DiskFull
from pds.errors import VaultBusy
from pds.settings import Settings
from pds.vault import Vault


@pytest.fixture
def running(vault: Vault, settings: Settings) -> Iterator[appender.Appender]:
    keyring = vault.keyring
    app = appender.start(
        settings.db_path, lambda: Vault.with_keyring(settings, keyring).log.append_batch
    )
    yield app
    app.stop()


def entries(vault: Vault) -> list[tuple[int, dict]]:
    rows = vault.conn.execute("SELECT idx, entry FROM audit_log ORDER BY idx").fetchall()
    return [(idx, json.loads(text)) for idx, text in rows]


def child_appends(settings: Settings, vault: Vault, worker: int, n: int, threads: int) -> int:
    """Fork a process whose ``threads`` threads each append ``n`` distinct entries through
    their own connections; it writes each index it got to a file and exits."""
    out = settings.home / f"indexes-{worker}.txt"
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            got: list[int] = []

            def run(t: int) -> None:
                v = Vault.with_keyring(settings, vault.keyring)
                for i in range(n):
                    got.append(v.audit("api.records.read", actor=f"client:w{worker}t{t}", count=i))
                v.conn.close()

            ts = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            out.write_text(" ".join(map(str, got)))
            code = 0
        finally:
            os._exit(code)
    return pid


def test_entries_of_many_processes_each_committed_once(
    vault: Vault, settings: Settings, running: appender.Appender
) -> None:
    before = vault.log.size()
    pids = [child_appends(settings, vault, w, 25, 2) for w in range(4)]
    for pid in pids:
        assert os.waitpid(pid, 0)[1] == 0
    got = []
    for w in range(4):
        got += [int(i) for i in (settings.home / f"indexes-{w}.txt").read_text().split()]
    assert sorted(got) == list(range(before, before + 200))  # no index given twice, no gap
    written = entries(vault)[before:]
    assert sorted((e["actor"], e["count"]) for _, e in written) == sorted(
        (f"client:w{w}t{t}", i) for w in range(4) for t in range(2) for i in range(25)
    )
    assert verify(vault.log_source()).ok


def test_the_same_entry_twice_is_two_entries(
    vault: Vault, settings: Settings, running: appender.Appender
) -> None:
    entry = make_entry(
        "api.records.read", actor="client:c1", count=3, at="2026-01-02T03:04:05.678Z"
    )
    before = vault.log.size()
    other = Vault.with_keyring(settings, vault.keyring)
    first = other.log.record(entry)
    second = other.log.record(entry)
    other.close()
    assert (first, second) == (before, before + 1)
    assert [e for _, e in entries(vault)[before:]] == [entry, entry]


def test_a_write_and_its_entry_still_commit_together(
    vault: Vault, settings: Settings, running: appender.Appender
) -> None:
    before = vault.log.size()

    def write_then_fail() -> None:
        with vault.conn:
            vault.conn.execute("BEGIN IMMEDIATE")
            vault.audit("records.write", actor="client:c1", count=1)
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="^rolled back$"):
        write_then_fail()
    assert vault.log.size() == before
    vault.audit("api.records.read", actor="client:c1", count=2)
    assert [e["count"] for _, e in entries(vault)[before:]] == [2]


def test_without_an_appender_entries_are_appended_directly(vault: Vault) -> None:
    assert appender.client(lock_path(vault.settings.db_path)) is None
    before = vault.log.size()
    assert vault.audit("api.records.read", actor="client:c1", count=1) == before
    assert entries(vault)[-1][1]["count"] == 1


def test_an_appender_that_is_gone_leaves_callers_to_append_directly(
    vault: Vault, settings: Settings, running: appender.Appender
) -> None:
    other = Vault.with_keyring(settings, vault.keyring)
    before = vault.log.size()
    assert other.audit("api.records.read", actor="client:c1", count=1) == before  # connected
    os.kill(running.pid, signal.SIGKILL)
    os.waitpid(running.pid, 0)
    # The connected socket finds the appender gone before sending: nothing was written
    # by it, so the entry is appended directly; so are later ones (connection refused).
    assert other.audit("api.records.read", actor="client:c1", count=2) == before + 1
    fresh = Vault.with_keyring(settings, vault.keyring)
    assert fresh.audit("api.records.read", actor="client:c1", count=3) == before + 2
    other.close()
    fresh.close()
    assert [e["count"] for _, e in entries(vault)[before:]] == [1, 2, 3]
    assert verify(vault.log_source()).ok


def test_it_stops_when_its_starter_exits(vault: Vault, settings: Settings) -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            app = appender.start(
                settings.db_path,
                lambda: Vault.with_keyring(settings, vault.keyring).log.append_batch,
            )
            os.write(write, f"{app.pid} {app.path}".encode())
            code = 0
        finally:
            os._exit(code)  # no exit hooks: only the pipe closing tells the appender
    os.close(write)
    pid_text, path_text = os.read(read, 4096).decode().split(" ", 1)
    appender_pid, folder = int(pid_text), Path(path_text).parent
    os.close(read)
    assert os.waitpid(pid, 0)[1] == 0
    deadline = time.monotonic() + 30
    while Path(f"/proc/{appender_pid}").exists() and _state(appender_pid) != "Z":
        assert time.monotonic() < deadline, "the appender outlived its starter"
        time.sleep(0.02)
    assert not folder.exists()  # the appender removed its socket's folder as it went


def test_a_service_managers_sigterm_leaves_it_to_finish(
    vault: Vault, settings: Settings, running: appender.Appender
) -> None:
    """SIGTERM reaches the whole process group: the appender goes on serving the workers
    still finishing their requests, and goes once they and the server are gone."""
    os.kill(running.pid, signal.SIGTERM)
    before = vault.log.size()
    link = appender.client(lock_path(settings.db_path))
    assert link is not None
    entry = make_entry("api.records.read", actor="client:c1", at="2026-01-02T03:04:05.678Z")
    assert link.append(canonical(entry)) == before
    assert entries(vault)[-1] == (before, entry)
    assert _state(running.pid) in ("S", "R")


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return stat[stat.rindex(")") + 2]


# -- errors: every caller of a failed batch gets the batch's error ------------------------------


@pytest.fixture
def serve_in_thread(tmp_path: Path) -> Iterator[Callable[[appender.Commit], Client]]:
    """Start ``appender.serve`` with a given commit in a thread; a client to it."""
    made: list[tuple[Client, int, threading.Thread]] = []

    def start(commit: appender.Commit) -> Client:
        path = tmp_path / f"a{len(made)}.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(8)
        stop_read, stop_write = os.pipe()
        t = threading.Thread(target=appender.serve, args=(listener, commit, stop_read))
        t.start()
        client = Client(path, tmp_path / "vault")
        made.append((client, stop_write, t))
        return client

    yield start
    for client, stop, t in made:
        client.close()
        os.close(stop)
        t.join(timeout=10)


def failing(exc: Exception) -> appender.Commit:
    def commit(batch: Sequence[bytes]) -> list[int]:
        raise exc

    return commit


def test_indexes_come_back_in_the_order_sent(
    tmp_path: Path, serve_in_thread: Callable[[appender.Commit], Client]
) -> None:
    seen: list[bytes] = []

    def commit(batch: Sequence[bytes]) -> list[int]:
        seen.extend(batch)
        return [len(seen) - len(batch) + i for i in range(len(batch))]

    client = serve_in_thread(commit)
    assert [client.append(f"e{i}".encode()) for i in range(5)] == [0, 1, 2, 3, 4]
    assert seen == [b"e0", b"e1", b"e2", b"e3", b"e4"]


def test_disk_full_reaches_the_caller(
    tmp_path: Path, serve_in_thread: Callable[[appender.Commit], Client]
) -> None:
    client = serve_in_thread(failing(DiskFull(tmp_path)))
    with pytest.raises(DiskFull) as caught:
        client.append(b"{}")
    assert caught.value.message == (
        f"the disk holding {tmp_path / 'vault'} is full; free some space and try again "
        "(nothing was changed)"
    )


def test_a_busy_vault_reaches_the_caller(
    tmp_path: Path, serve_in_thread: Callable[[appender.Commit], Client]
) -> None:
    import sqlite3

    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
    client = serve_in_thread(failing(busy))
    with pytest.raises(VaultBusy, match="^database is locked$"):
        client.append(b"{}")


def test_any_other_failure_is_503_with_its_reason(
    serve_in_thread: Callable[[appender.Commit], Client],
) -> None:
    client = serve_in_thread(failing(ValueError("no such table: audit_log")))
    with pytest.raises(AccessLogUnavailable) as caught:
        client.append(b"{}")
    assert caught.value.message == "the access log could not be written: no such table: audit_log"
    assert caught.value.status == 503


def test_an_appender_lost_after_the_entry_was_sent_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "a.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)

    def take_and_vanish() -> None:
        sock, _ = listener.accept()
        sock.recv(100)  # the entry arrived: whether it was committed is unknown
        sock.close()

    t = threading.Thread(target=take_and_vanish)
    t.start()
    with pytest.raises(AccessLogUnavailable) as caught:
        Client(path, tmp_path).append(b"{}")
    t.join()
    listener.close()
    assert caught.value.message == (
        "the access log's appender stopped while writing this call's entry"
    )
