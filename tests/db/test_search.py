"""SQL of the search index (``pds.db.search``) and the schema 8 migration that makes it."""

from __future__ import annotations

import pytest

from pds import db as dbmod
from pds.db import keys as keystore
from pds.db import records as store
from pds.db import search as index
from pds.vault import SourceInfo, Vault, search
from tests.conftest import PASSPHRASE
from tests.factories import prepared, transaction


def ingest(vault: Vault, *descriptions: str) -> None:
    items = [
        prepared(transaction(f"2024-01-{n + 1:02d}", "-1.00", d))
        for n, d in enumerate(descriptions)
    ]
    vault.ingest(SourceInfo("test", "a.csv", b"a"), [items])


def test_category_and_paging_of_the_index(vault: Vault) -> None:
    ingest(vault, *[f"SHOP {n}" for n in range(1, 8)])
    terms = vault.terms.of_query("shop")
    assert index.counts(vault.conn, terms, "transactions") == {"transactions": 7}
    assert index.counts(vault.conn, terms, "energy") == {}
    assert index.newest(vault.conn, terms, "transactions", limit=3, skip=2) == [5, 4, 3]
    assert index.newest(vault.conn, terms, "transactions", limit=2, skip=2**70) == []
    days = [f"2024-01-0{n}" for n in range(1, 8)]
    window = {"since": "2024-01-02", "until": "2024-01-06"}
    assert index.in_time_order(vault.conn, terms, "transactions", **window, limit=3) == [
        (days[1], 2),
        (days[2], 3),
        (days[3], 4),
    ]
    assert index.in_time_order(
        vault.conn, terms, "transactions", **window, after=(days[3], 4), limit=3
    ) == [(days[4], 5)]
    assert index.in_time_order(
        vault.conn, terms, "transactions", newest=True, after=(days[2], 3), limit=9
    ) == [(days[1], 2), (days[0], 1)]
    assert index.in_time_order(vault.conn, terms, "transactions", source_id=1, limit=2) == [
        (days[0], 1),
        (days[1], 2),
    ]
    assert index.in_time_order(vault.conn, terms, "transactions", source_id=9, limit=9) == []
    assert index.in_time_order(vault.conn, [], "transactions", limit=9) == []


def test_search_records_reads_the_index_a_page_at_a_time(vault: Vault, monkeypatch) -> None:
    ingest(vault, *[f"SHOP {n}" for n in range(1, 8)])
    monkeypatch.setattr(store, "PAGE", 3)
    pages = []
    real = index.in_time_order

    def counted(*args, **kwargs):
        pages.append(kwargs["after"])
        return real(*args, **kwargs)

    monkeypatch.setattr(index, "in_time_order", counted)
    found = vault.search_records("shop gbp", "transactions", newest=True)
    assert [r.id for r in found] == [7, 6, 5, 4, 3, 2, 1]
    assert pages == [None, ("2024-01-05", 5), ("2024-01-02", 2)]
    assert [r.id for r in vault.search_records("shop", "transactions", since="2024-01-06")] == [
        6,
        7,
    ]
    assert list(vault.search_records("a", "transactions")) == []  # no word of two characters


def test_the_rarest_term_comes_first(vault: Vault) -> None:
    ingest(vault, "SHOP ONE", "SHOP TWO", "SHOP THREE ONE")
    shop, one, none = (vault.terms.term(w) for w in ["shop", "one", "absent"])
    assert index.rarest_first(vault.conn, [shop, one, shop, none]) == [none, one, shop]
    assert index.counts(vault.conn, [none, one, shop]) == {}
    assert index.counts(vault.conn, [one, shop]) == {"transactions": 2}


@pytest.mark.parametrize("records", [0, 2])
def test_the_schema_8_migration(settings, records: int) -> None:
    """From a schema-7 vault: the index table, its trigger, the by-source index; the mark of
    a complete index only when there are no records to index."""
    with Vault.create(settings, PASSPHRASE) as vault:
        ingest(vault, *["A SHOP", "B SHOP"][:records])
        conn = vault.conn
        conn.execute("DROP TRIGGER search_terms_of_deleted_record")
        conn.execute("DROP TABLE search_terms")
        conn.execute("DROP INDEX records_by_source_category")
        conn.execute("CREATE INDEX records_by_source ON records (source_id)")
        conn.execute("DELETE FROM meta WHERE key IN ('search_salt', 'search_indexed')")
        conn.execute("PRAGMA user_version = 7")
    conn = dbmod.open_db(settings.db_path).conn  # migrated, not unlocked
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {"search_terms", "search_terms_by_record", "search_terms_of_deleted_record"} <= names
    assert "records_by_source_category" in names
    assert "records_by_source" not in names
    assert (keystore.get_meta(conn, search.DONE), index.count_terms(conn)) == (
        None if records else "1",
        0,
    )
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT 1 FROM records WHERE source_id = 1 AND category = 'x'"
    ).fetchall()
    assert "records_by_source_category" in plan[0][3]
    conn.close()
    with Vault.open(settings, PASSPHRASE) as vault:
        assert [g[1] for g in vault.search("shop")] == ([records] if records else [])
        assert search.complete(vault.conn)


def test_an_imports_page_cache_is_given_back_after_it(vault: Vault) -> None:
    conn = vault.conn
    before = conn.execute("PRAGMA cache_size").fetchone()[0]
    with dbmod.page_cache(conn, 4096):
        assert conn.execute("PRAGMA cache_size").fetchone()[0] == -4096
    assert conn.execute("PRAGMA cache_size").fetchone()[0] == before == -2000
    with pytest.raises(ValueError, match="^inside$"), dbmod.page_cache(conn, 4096):
        raise ValueError("inside")
    assert conn.execute("PRAGMA cache_size").fetchone()[0] == -2000
