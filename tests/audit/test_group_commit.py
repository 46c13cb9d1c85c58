"""Group commit of the access log: threads of one process share commits, and no thread
returns before its own entry is on disk (or raises with its whole batch)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from flask import Flask

from pds.audit.log import AuditLog, GroupCommit
from pds.audit.verify import verify
from pds.settings import Settings
from pds.vault import Vault


@pytest.fixture
def others(vault: Vault, settings: Settings) -> Iterator[list[Vault]]:
    """Six more connections to the same unlocked vault, as six server threads hold."""
    opened = [Vault.with_keyring(settings, vault.keyring) for _ in range(6)]
    yield opened
    for v in opened:
        v.close()


def run_threads(targets: list[Callable[[], object]]) -> tuple[list[threading.Thread], dict]:
    outcome: dict[int, object] = {}

    def call(i: int) -> None:
        try:
            outcome[i] = targets[i]()
        except BaseException as exc:  # the test asserts on it
            outcome[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(targets))]
    for t in threads:
        t.start()
    return threads, outcome


@contextmanager
def commit_in_flight(group: GroupCommit) -> Iterator[None]:
    """As if another thread's commit were in flight until the block ends."""
    with group._cond:
        group._committing = True
    try:
        yield
    finally:
        with group._cond:
            group._committing = False
            group._cond.notify_all()


def wait_queued(group: GroupCommit, n: int) -> None:
    deadline = time.monotonic() + 60
    while len(group._queue) < n:
        assert time.monotonic() < deadline, f"only {len(group._queue)} of {n} entries queued"
        time.sleep(0.005)


def reader(v: Vault, i: int) -> Callable[[], int]:
    return lambda: v.audit("api.records.read", actor="client:c1", client_id="c1", count=i)


def counts_by_index(vault: Vault) -> dict[int, int]:
    return {
        idx: json.loads(text).get("count", -1)
        for idx, text in vault.conn.execute("SELECT idx, entry FROM audit_log")
    }


def test_entries_queued_during_a_commit_share_the_next_commit(
    vault: Vault, others: list[Vault]
) -> None:
    group = GroupCommit.of(vault.conn)
    assert GroupCommit.of(others[0].conn) is group  # one group per vault and process
    size = vault.log.size()
    batches, entries = group.batches, group.entries

    with commit_in_flight(group):
        threads, outcome = run_threads([reader(v, i) for i, v in enumerate(others)])
        wait_queued(group, 6)
        assert outcome == {}  # nobody returns before the commit
    for t in threads:
        t.join(timeout=60)

    assert (group.batches - batches, group.entries - entries) == (1, 6)
    assert sorted(outcome.values()) == list(range(size, size + 6))
    stored = counts_by_index(vault)
    assert {i: stored[index] for i, index in outcome.items()} == {i: i for i in range(6)}
    report = verify(vault.log_source())
    assert report.ok, report.problems


def test_a_failed_batch_fails_every_caller_and_writes_none_of_it(
    vault: Vault, others: list[Vault], monkeypatch: pytest.MonkeyPatch
) -> None:
    group = GroupCommit.of(vault.conn)
    size = vault.log.size()
    real = AuditLog._append

    def failing(self: AuditLog, data: bytes, leaf: bytes) -> int:
        if json.loads(data)["count"] == 3:
            raise sqlite3.OperationalError("disk I/O error")
        return real(self, data, leaf)

    monkeypatch.setattr(AuditLog, "_append", failing)
    with commit_in_flight(group):
        threads, outcome = run_threads([reader(v, i) for i, v in enumerate(others)])
        wait_queued(group, 6)
    for t in threads:
        t.join(timeout=60)

    assert sorted(outcome) == list(range(6))
    assert {type(e).__name__ for e in outcome.values()} == {"OperationalError"}
    assert {str(e) for e in outcome.values()} == {"disk I/O error"}
    assert vault.log.size() == size
    assert not any(v.conn.in_transaction for v in others)

    monkeypatch.setattr(AuditLog, "_append", real)
    assert [reader(v, 10 + i)() for i, v in enumerate(others[:2])] == [size, size + 1]
    report = verify(vault.log_source())
    assert report.ok, report.problems


def test_a_lone_caller_commits_alone(vault: Vault) -> None:
    group = GroupCommit.of(vault.conn)
    batches, entries, size = group.batches, group.entries, vault.log.size()
    assert reader(vault, 1)() == size
    assert (group.batches - batches, group.entries - entries) == (1, 1)


def test_an_entry_inside_a_transaction_commits_with_it(vault: Vault) -> None:
    group = GroupCommit.of(vault.conn)
    batches, size = group.batches, vault.log.size()
    vault.conn.execute("BEGIN IMMEDIATE")
    assert reader(vault, 1)() == size
    vault.conn.execute("ROLLBACK")
    assert group.batches == batches
    assert vault.log.size() == size


def test_many_threads_appending_leave_one_gapless_verified_log(
    vault: Vault, others: list[Vault]
) -> None:
    group = GroupCommit.of(vault.conn)
    size, entries = vault.log.size(), group.entries

    def burst(v: Vault, t: int) -> Callable[[], list[int]]:
        return lambda: [reader(v, t * 100 + i)() for i in range(40)]

    threads, outcome = run_threads([burst(v, t) for t, v in enumerate(others)])
    for t in threads:
        t.join(timeout=120)

    indexes = sorted(i for got in outcome.values() for i in got)  # type: ignore[union-attr]
    assert indexes == list(range(size, size + 240))
    assert group.entries - entries == 240
    stored = counts_by_index(vault)
    for t, got in outcome.items():
        assert [stored[i] for i in got] == [t * 100 + i for i in range(40)]  # type: ignore[union-attr]
    report = verify(vault.log_source())
    assert report.ok, report.problems


def test_each_server_thread_has_its_own_vault_connection(vault: Vault) -> None:
    from pds.http.context import current_vault

    app = Flask("t")
    app.extensions["pds_vaults"] = {}
    app.extensions["pds_keyring"] = vault.keyring
    app.config["PDS_SETTINGS"] = vault.settings

    both_alive = threading.Barrier(2)

    def mine() -> tuple[int, int]:
        with app.app_context():
            first = current_vault()
        with app.app_context():
            second = current_vault()
        both_alive.wait(timeout=30)  # so the two threads cannot share an identifier
        return id(first), id(second)

    threads, outcome = run_threads([mine, mine])
    for t in threads:
        t.join(timeout=60)
    (a1, a2), (b1, b2) = outcome[0], outcome[1]  # type: ignore[misc]
    assert a1 == a2  # a thread keeps its connection between requests
    assert b1 == b2
    assert a1 != b1  # threads never share one
    for v in app.extensions["pds_vaults"].values():
        v.close()
