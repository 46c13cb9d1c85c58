"""The vault's storage and keys, through its public surface."""

from __future__ import annotations

import sqlite3

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pds import db as dbmod
from pds.errors import IdempotencyKeyReused, SchemaTooNew, VaultLocked
from pds.settings import KdfParams, Settings, load_settings
from pds.vault import SourceInfo, Vault, keys
from pds.vault.records import SealError, open_sealed, seal
from tests.conftest import PASSPHRASE
from tests.factories import prepared, transaction

KEY = AESGCM(bytes(range(32)))
categories = st.sampled_from(["transactions", "health", "contacts"])


def ingest(vault: Vault, items, name: str = "f.csv"):
    return vault.ingest(SourceInfo("midata", name, b"d" * 32), [items])


# -- sealing laws ---------------------------------------------------------------------------


@given(plain=st.binary(max_size=2048), rid=st.integers(1, 2**62), cat=categories)
def test_open_of_seal_is_identity(plain: bytes, rid: int, cat: str) -> None:
    nonce, ct = seal(KEY, rid, cat, 1, plain)
    assert open_sealed(KEY, rid, cat, 1, nonce, ct) == plain


@hsettings(max_examples=200)
@given(plain=st.binary(min_size=1, max_size=256), data=st.data())
def test_any_flipped_bit_fails_closed(plain: bytes, data: st.DataObject) -> None:
    nonce, ct = seal(KEY, 7, "transactions", 1, plain)
    part = data.draw(st.sampled_from(["nonce", "ciphertext", "tag"]))
    if part == "nonce":
        buf, lo, hi = bytearray(nonce), 0, len(nonce)
    elif part == "ciphertext":
        buf, lo, hi = bytearray(ct), 0, len(ct) - 16
    else:
        buf, lo, hi = bytearray(ct), len(ct) - 16, len(ct)
    bit = data.draw(st.integers(lo * 8, hi * 8 - 1))
    buf[bit // 8] ^= 1 << (bit % 8)
    n2, c2 = (bytes(buf), ct) if part == "nonce" else (nonce, bytes(buf))
    with pytest.raises(SealError, match="^record 7 does not decrypt: it was altered or moved$"):
        open_sealed(KEY, 7, "transactions", 1, n2, c2)


@given(
    rid=st.integers(1, 10**6),
    other=st.integers(1, 10**6),
    cat=categories,
    other_cat=categories,
    version=st.integers(1, 5),
    other_version=st.integers(1, 5),
)
def test_changed_associated_data_fails_closed(rid, other, cat, other_cat, version, other_version):
    nonce, ct = seal(KEY, rid, cat, version, b'{"amount":"1.00"}')
    if (rid, cat, version) == (other, other_cat, other_version):
        assert open_sealed(KEY, other, other_cat, other_version, nonce, ct) == b'{"amount":"1.00"}'
    else:
        with pytest.raises(SealError):
            open_sealed(KEY, other, other_cat, other_version, nonce, ct)


def test_ciphertext_moved_to_another_row_fails(vault: Vault) -> None:
    ingest(vault, [prepared(transaction(amount="-1.00")), prepared(transaction(amount="-2.00"))])
    conn = vault.conn
    nonce, ct = conn.execute("SELECT nonce, ciphertext FROM records WHERE id = 1").fetchone()
    conn.execute("UPDATE records SET nonce = ?, ciphertext = ? WHERE id = 2", (nonce, ct))
    assert vault.get(1).payload["amount"] == "-1.00"
    with pytest.raises(SealError, match="^record 2 does not decrypt: it was altered or moved$"):
        vault.get(2)


def test_record_relabelled_to_another_category_fails(vault: Vault) -> None:
    ingest(vault, [prepared(transaction())])
    vault.keyring.category_aead(vault.conn, "health")
    vault.conn.execute("UPDATE records SET category = 'health' WHERE id = 1")
    with pytest.raises(SealError, match="^record 1 does not decrypt: it was altered or moved$"):
        vault.get(1)


# -- dedup ----------------------------------------------------------------------------------


def test_same_items_twice_add_nothing(vault: Vault) -> None:
    items = [prepared(transaction(amount=f"-{i}.00")) for i in range(1, 4)]
    first = ingest(vault, items)
    second = ingest(vault, items)
    assert (first.new, first.duplicate) == (3, 0)
    assert (second.new, second.duplicate, second.source_id) == (0, 3, None)
    assert [r.payload["amount"] for r in vault.records()] == ["-1.00", "-2.00", "-3.00"]


def test_genuine_repeats_are_kept_apart_by_occurrence(vault: Vault) -> None:
    coffee = transaction()
    result = ingest(vault, [prepared(coffee, nth=0), prepared(coffee, nth=1)])
    assert (result.new, result.duplicate) == (2, 0)
    again = ingest(vault, [prepared(coffee, nth=0), prepared(coffee, nth=1)])
    assert (again.new, again.duplicate) == (0, 2)


def test_identity_decides_over_payload(vault: Vault) -> None:
    a = prepared(transaction(description="PAYEE"), identity="acct:FIT1")
    b = prepared(transaction(description="PAYEE (corrected)"), identity="acct:FIT1")
    c = prepared(transaction(description="PAYEE"), identity="acct:FIT2")
    result = ingest(vault, [a, b, c])
    assert (result.new, result.duplicate) == (2, 1)


def add(vault: Vault, n: int, *, source: str = "client:a", key: str | None = None, **kw):
    """Record n through ``Vault.add_record`` (its own transaction); returns (id, created)."""
    payload = transaction(amount=f"-{n}.00", description=f"BILL {n}") | kw
    with dbmod.transaction(vault.conn):
        return vault.add_record(
            "transactions", payload["date"], payload, source=source, idempotency_key=key
        )


def test_add_record_tells_a_writers_records_apart_by_content(vault: Vault) -> None:
    first = [add(vault, n) for n in range(100)]
    assert all(created for _, created in first)
    ids = [rid for rid, _ in first]
    assert len(set(ids)) == 100
    assert [add(vault, n) for n in range(100)] == [(rid, False) for rid in ids]
    # mixed: new, repeat, new, repeat, the same payload from another writer
    assert add(vault, 100)[1] is True
    assert add(vault, 5) == (ids[5], False)
    assert add(vault, 101)[1] is True
    assert add(vault, 100)[1] is False
    theirs, created = add(vault, 5, source="client:b")
    assert created
    assert theirs not in ids
    assert add(vault, 5, source="client:b") == (theirs, False)
    assert vault.status()["records"] == 103
    assert [s["new"] for s in vault.sources()] == [102, 1]


def test_add_record_idempotency_key(vault: Vault) -> None:
    rid, created = add(vault, 1, key="k")
    assert created
    assert add(vault, 1, key="k") == (rid, False)
    for changed in ({"description": "BILL 2"}, {"date": "2024-03-02"}):
        with pytest.raises(IdempotencyKeyReused) as exc:
            add(vault, 1, key="k", **changed)
        assert exc.value.message == (
            'the Idempotency-Key "k" was already used with a different record; nothing was stored'
        )
        assert (exc.value.status, exc.value.code) == (422, "idempotency_key_reused")
    assert vault.status()["records"] == 1
    other, created = add(vault, 1, key="k2")  # another key: another record, same payload
    assert created
    assert other != rid
    mine, created = add(vault, 2, key="k", source="client:b")  # keys are per writer
    assert created
    assert mine not in (rid, other)
    keyed = [add(vault, n, key=f"n{n}")[0] for n in range(100)]
    assert len(set(keyed)) == 100
    assert [add(vault, n, key=f"n{n}") for n in range(100)] == [(i, False) for i in keyed]
    assert vault.status()["records"] == 103


def test_records_stream_in_time_order_across_pages(vault: Vault) -> None:
    items = [
        prepared(transaction(date=f"2024-01-{d:02d}", amount=f"-{d}.00")) for d in range(28, 0, -1)
    ]
    ingest(vault, items)
    from pds.db import records as recmod

    queries: list[str] = []
    vault.conn.set_trace_callback(queries.append)
    dates = [r.occurred_at for r in recmod_pages(vault, recmod)]
    vault.conn.set_trace_callback(None)
    assert dates == [f"2024-01-{d:02d}" for d in range(1, 29)]
    # 28 rows in pages of 5: the first page one query; each of the five after a keyset
    # cursor reads the rest of the cursor's day (none here: one record a day), then the
    # later days.
    pages = [q for q in queries if q.startswith("SELECT id, category")]
    assert len(pages) == 11
    assert sum("AND occurred_at = '2024-01-" in q and "AND id > " in q for q in pages) == 5
    assert sum("AND occurred_at > '2024-01-" in q for q in pages) == 5
    window = [r.occurred_at for r in vault.records("transactions", "2024-01-05", "2024-01-08")]
    assert window == ["2024-01-05", "2024-01-06", "2024-01-07"]


def recmod_pages(vault: Vault, recmod):
    # Force tiny pages so the keyset cursor is exercised.
    old = recmod.PAGE
    recmod.PAGE = 5
    try:
        return list(vault.records("transactions"))
    finally:
        recmod.PAGE = old


def test_query_plans_use_the_time_index(vault: Vault) -> None:
    from pds.db.records import query_rows

    conn = vault.conn
    captured: list[str] = []
    conn.set_trace_callback(captured.append)
    query_rows(conn, category="transactions", since="2024-01-01", after=("2024-01-02", 5))
    conn.set_trace_callback(None)
    plans = [" ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql)) for sql in captured]
    assert plans == [
        "SEARCH records USING INDEX records_by_time (category=? AND occurred_at=? AND id>?)",
        "SEARCH records USING INDEX records_by_time (category=? AND occurred_at>?)",
    ]


def test_pages_after_a_cursor_inside_a_crowded_timestamp(vault: Vault) -> None:
    """Many records at one timestamp: every page after a cursor among them goes on from the
    cursor's own record, in both directions, each record once."""
    items = [
        prepared(transaction(date="2024-03-01", amount=f"-{n}.00", description=f"same {n}"))
        for n in range(1, 12)
    ]
    items += [prepared(transaction(date=f"2024-03-{d:02d}", amount="-1.00")) for d in (2, 3)]
    ingest(vault, items)
    from pds.db.records import query_rows

    windows = [({}, 13), ({"since": "2024-03-01", "until": "2024-03-03"}, 12)]
    windows += [({"since": "2024-03-02"}, 2), ({"until": "2024-03-02"}, 11)]
    for window, total in windows:
        for newest in (False, True):
            seen: list[tuple[str, int]] = []
            after = None
            while True:
                rows = query_rows(
                    vault.conn,
                    category="transactions",
                    after=after,
                    limit=4,
                    newest=newest,
                    **window,
                )
                seen += [(r[3], r[0]) for r in rows]
                if len(rows) < 4:
                    break
                after = (rows[-1][3], rows[-1][0])
            assert seen == sorted(seen, reverse=newest), (window, newest)
            assert len(seen) == len(set(seen)) == total, (window, newest)


# -- keys -----------------------------------------------------------------------------------


def test_wrong_passphrase_is_refused(vault: Vault, settings: Settings) -> None:
    with pytest.raises(VaultLocked) as exc:
        Vault.open(settings, "not it")
    assert exc.value.message == "the passphrase is wrong, or the vault's key is damaged"


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE meta SET value = zeroblob(60) WHERE key = 'wrapped_master_key'",
        "UPDATE meta SET value = x'00' WHERE key = 'wrapped_master_key'",
        "DELETE FROM meta WHERE key = 'wrapped_master_key'",
        "UPDATE meta SET value = 'garbage' WHERE key = 'kdf'",
    ],
)
def test_damaged_key_looks_like_wrong_passphrase(vault, settings, damage, monkeypatch) -> None:
    vault.conn.execute(damage)
    calls: list[KdfParams] = []
    real = keys.derive_kek
    monkeypatch.setattr(keys, "derive_kek", lambda p, s, k: calls.append(k) or real(p, s, k))
    with pytest.raises(VaultLocked) as exc:
        Vault.open(settings, PASSPHRASE)
    assert exc.value.message == "the passphrase is wrong, or the vault's key is damaged"
    # The same Argon2id work runs whatever is wrong, so timing does not tell them apart.
    assert len(calls) == 1


def test_default_kdf_meets_the_floor() -> None:
    params = load_settings({"PDS_HOME": "/tmp/x"}).kdf
    assert (params.memory_kib, params.iterations, params.lanes) == (65536, 3, 4)


def test_kdf_parameters_are_stored_in_the_vault(vault: Vault) -> None:
    assert keys.kdf_params(vault.conn) == KdfParams(8192, 1, 4)


def test_passphrase_change_rewraps_only_the_master_key(vault: Vault, settings: Settings) -> None:
    ingest(vault, [prepared(transaction())])
    before = vault.conn.execute("SELECT nonce, ciphertext FROM records").fetchall()
    vault.change_passphrase("new words entirely")
    after = vault.conn.execute("SELECT nonce, ciphertext FROM records").fetchall()
    assert before == after
    vault.close()
    with pytest.raises(VaultLocked):
        Vault.open(settings, PASSPHRASE)
    with Vault.open(settings, "new words entirely") as v:
        assert [r.payload["amount"] for r in v.records()] == ["-3.20"]


def test_each_category_has_its_own_key(vault: Vault) -> None:
    conn = vault.conn
    with dbmod.transaction(conn):
        _, a = vault.keyring.category_aead(conn, "transactions")
        _, b = vault.keyring.category_aead(conn, "health")
    nonce, ct = seal(a, 1, "transactions", 1, b"x")
    with pytest.raises(SealError):
        open_sealed(b, 1, "transactions", 1, nonce, ct)


def test_newer_schema_is_refused(vault: Vault, settings: Settings) -> None:
    vault.conn.execute("PRAGMA user_version = 99")
    vault.close()
    with pytest.raises(SchemaTooNew) as exc:
        Vault.open(settings, PASSPHRASE)
    assert exc.value.message == (
        "this vault uses schema version 99, "
        f"but this pds only knows versions up to {dbmod.SCHEMA_VERSION}"
    )


def test_vault_uses_wal_and_full_sync(vault: Vault) -> None:
    conn = vault.conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_failed_ingest_leaves_nothing(vault: Vault) -> None:
    def batches():
        yield [prepared(transaction(amount="-1.00"))]
        raise RuntimeError("connector died")

    with pytest.raises(RuntimeError):
        vault.ingest(SourceInfo("midata", "x.csv", b"d"), batches())
    assert vault.conn.execute("SELECT count(*) FROM records").fetchone()[0] == 0
    assert vault.conn.execute("SELECT count(*) FROM sources").fetchone()[0] == 0


def test_vault_file_is_private(vault: Vault, settings: Settings) -> None:
    assert settings.db_path.stat().st_mode & 0o777 == 0o600


def test_sqlite_sees_only_plaintext_metadata(vault: Vault) -> None:
    ingest(vault, [prepared(transaction(description="SECRET SHOP"))])
    cols = [r[1] for r in vault.conn.execute("PRAGMA table_info(records)")]
    assert cols == [
        "id",
        "category",
        "source_id",
        "occurred_at",
        "dedup_key",
        "key_version",
        "nonce",
        "ciphertext",
        "created_at",
    ]
    row = (
        sqlite3.connect(vault.settings.db_path).execute("SELECT ciphertext FROM records").fetchone()
    )
    assert b"SECRET SHOP" not in row[0]
