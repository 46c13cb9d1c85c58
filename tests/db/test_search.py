"""SQL of the search index (``pds.db.search``), the schema 8 migration that makes it and the
schema 11 migration that makes it again."""

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
    assert {"search_terms", "search_records", "search_terms_of_deleted_record"} <= names
    assert "search_terms_by_record" not in names  # made by 8, gone with 11's new table
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


def make_schema_10(conn) -> None:
    """Put the search index back as schema 8 to 10 had it: with the numbers' words, a by-record
    index, the trigger that used it, no ``search_records``."""
    conn.execute("DROP TRIGGER search_terms_of_deleted_record")
    conn.execute("DROP TABLE search_records")
    conn.execute("CREATE INDEX search_terms_by_record ON search_terms (record_id)")
    conn.execute(
        "CREATE TRIGGER search_terms_of_deleted_record AFTER DELETE ON records BEGIN "
        "DELETE FROM search_terms WHERE record_id = OLD.id; END"
    )
    conn.execute("PRAGMA user_version = 10")


@pytest.mark.parametrize("records", [0, 2])
def test_the_schema_11_migration(settings, records: int) -> None:
    """From a schema-10 vault: the index dropped and made again, its by-record index gone,
    ``search_records`` and the new trigger; the first unlock indexes every record again,
    without the amounts' and dates' words the old index held."""
    with Vault.create(settings, PASSPHRASE) as vault:
        ingest(vault, *["A SHOP", "B SHOP"][:records])
        conn = vault.conn
        if records:  # as schema 8 indexed it: the date's and the amount's words too
            old = [(vault.terms.term(w), "transactions", "2024-01-01", 1) for w in ["2024", "00"]]
            index.insert_terms(conn, old, [])
        make_schema_10(conn)
        keystore.set_meta(conn, search.PROGRESS, "1")
    conn = dbmod.open_db(settings.db_path).conn  # migrated, not unlocked
    assert dbmod.schema_version(conn) == dbmod.SCHEMA_VERSION == 11
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {"search_terms", "search_records", "search_terms_of_deleted_record"} <= names
    assert "search_terms_by_record" not in names
    held = conn.execute("SELECT count(*) FROM search_records").fetchone()[0]
    assert (index.count_terms(conn), held) == (0, 0)
    assert keystore.get_meta(conn, search.DONE) == (None if records else "1")
    assert keystore.get_meta(conn, search.PROGRESS) is None
    conn.close()
    with Vault.open(settings, PASSPHRASE) as vault:
        assert search.complete(vault.conn)
        assert [g[1] for g in vault.search("shop")] == ([records] if records else [])
        assert vault.search("2024") == vault.search("00") == []
        if records:
            terms = [vault.terms.term(w) for w in ["gbp", "shop", "vis"]]  # "a": too short
            assert index.record_terms(vault.conn, 1) == terms
            assert index.terms_of(vault.conn, 1) == sorted(terms)
            with dbmod.transaction(vault.conn):
                vault.conn.execute("DELETE FROM records WHERE id = 1")
            assert index.terms_of(vault.conn, 1) == index.record_terms(vault.conn, 1) == []
            assert [g[1] for g in vault.search("shop")] == [1]


def test_the_trigger_deletes_a_records_rows_by_its_terms_and_only_them(vault: Vault) -> None:
    """A record's rows found from ``search_records`` alone, by primary key, and deleted with
    the record; a record with no word has no ``search_records`` row, and deletes fine."""
    ingest(vault, "SHOP ONE", "SHOP TWO")
    conn = vault.conn
    plan = conn.execute(
        "EXPLAIN QUERY PLAN DELETE FROM search_terms WHERE category = 'x' AND occurred_at = 'y'"
        " AND record_id = 1 AND term IN (SELECT x'00')"
    ).fetchall()
    assert (
        "USING PRIMARY KEY (term=? AND category=? AND occurred_at=? AND record_id=?)" in plan[0][3]
    )
    words = ["gbp", "shop", "one", "vis"]
    assert index.record_terms(conn, 1) == [vault.terms.term(w) for w in words]
    with dbmod.transaction(conn):
        conn.execute("DELETE FROM records WHERE id = 1")
    assert index.terms_of(conn, 1) == index.record_terms(conn, 1) == []
    assert index.terms_of(conn, 2) == sorted(
        vault.terms.term(w) for w in ["gbp", "shop", "two", "vis"]
    )
    assert index.count_terms(conn) == 4
    blank = prepared({"date": "2024-02-01", "amount": "1.00"})
    blank = blank.__class__("balances", blank.occurred_at, blank.plain, None, 0)
    vault.ingest(SourceInfo("test", "b.csv", b"b"), [[blank]])
    assert conn.execute("SELECT count(*) FROM search_records WHERE record_id = 3").fetchone() == (
        0,
    )
    with dbmod.transaction(conn):
        conn.execute("DELETE FROM records WHERE id = 3")
    assert index.count_terms(conn) == 4


def test_an_imports_page_cache_is_given_back_after_it(vault: Vault) -> None:
    conn = vault.conn
    before = conn.execute("PRAGMA cache_size").fetchone()[0]
    with dbmod.page_cache(conn, 4096):
        assert conn.execute("PRAGMA cache_size").fetchone()[0] == -4096
    assert conn.execute("PRAGMA cache_size").fetchone()[0] == before == -2000
    with pytest.raises(ValueError, match="^inside$"), dbmod.page_cache(conn, 4096):
        raise ValueError("inside")
    assert conn.execute("PRAGMA cache_size").fetchone()[0] == -2000
