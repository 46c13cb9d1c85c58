"""The search index: words and their keyed hashes, kept with every write and delete of a
record (import, write-back, profile, intentions, forget), and filled for a vault that
had records before it had an index."""

from __future__ import annotations

import hmac
from datetime import date

from pds import db as dbmod
from pds.db import keys as keystore
from pds.db import search as index
from pds.profile import intentions, profile
from pds.rights import forget
from pds.vault import SourceInfo, Vault, search
from tests.conftest import PASSPHRASE
from tests.factories import prepared, transaction

# -- words ------------------------------------------------------------------------------------


def test_words_are_nfkc_casefolded_runs_of_letters_and_digits() -> None:
    assert search.words("Café-Crème, STRASSE Straße x_y 12.50 ＡＢＣ ﬁne 東京") == [
        "café",
        "crème",
        "strasse",
        "strasse",
        "12",
        "50",
        "abc",
        "fine",
        "東京",
    ]
    assert search.words("a b . _ -") == []


def test_a_payload_gives_the_distinct_words_of_its_values() -> None:
    payload = {
        "description": "Coffee coffee SHOP",
        "amount": -3.5,
        "count": 12,
        "settled": True,
        "note": None,
        "coding": [{"display": "Body weight", "code": "29463-7"}, "shop", 7],
        "category": "x",
    }
    # by field name (amount, category, coding, count, description); one-character words out
    assert search.payload_words(payload) == ["29463", "body", "weight", "shop", "12", "coffee"]


def test_a_categorys_amounts_readings_dates_times_and_coordinates_are_not_words() -> None:
    payload = transaction("2024-01-03", "-12.50", "TESCO STORES 2841", balance="1523.40")
    assert search.payload_words(payload, "transactions") == [
        "gbp",
        "tesco",
        "stores",
        "2841",
        "vis",
    ]
    assert search.payload_words(payload) == [
        "12", "50", "1523", "40", "gbp", "2024", "01", "03", "tesco", "stores", "2841", "vis"
    ]  # fmt: skip
    reading = {"start": "2024-03-31T09:00:00Z", "duration": "1800", "value": "0.42", "unit": "kWh"}
    assert search.payload_words(reading, "energy") == ["kwh"]
    place = {"time": "2024-03-31T09:00:00Z", "latitude": "51.5007292", "longitude": "-0.1246254",
             "accuracy": "20", "source": "GPS", "device": "Pixel 7"}  # fmt: skip
    assert search.payload_words(place, "locations") == ["pixel", "gps"]
    # Only the category's own fields, and only at the top: a field of the same name inside
    # a list or an object, or in another category, is words as before.
    assert search.payload_words({"date": "2024-01-03", "x": {"amount": "7.25"}}, "balances") == [
        "25"
    ]
    assert search.payload_words({"amount": "7.25"}, "contacts") == ["25"]
    assert search.NOT_WORDS["transactions"] == {"date", "amount", "balance"}


def test_a_payload_gives_at_most_max_words() -> None:
    payload = {"text": " ".join(f"w{n}" for n in range(search.MAX_WORDS + 50))}
    found = search.payload_words(payload)
    assert (len(found), found[0], found[-1]) == (search.MAX_WORDS, "w0", f"w{search.MAX_WORDS - 1}")


def test_terms_are_truncated_hmacs_under_the_vault_key(vault: Vault, settings) -> None:
    term = vault.terms.term("coffee")
    assert len(term) == search.TERM_BYTES == 12
    assert vault.terms.of_query("Coffee COFFEE shop") == [term, vault.terms.term("shop")]
    assert vault.terms.of_query("a ! -") == []
    many = " ".join(f"w{n}" for n in range(40))
    assert vault.terms.of_query(many) == [vault.terms.term(f"w{n}") for n in range(32)]
    other = Vault.create(settings.__class__(home=settings.home.parent / "b", kdf=settings.kdf), "p")
    assert other.terms.term("coffee") != term  # each vault its own key
    other.close()


def test_summary_is_a_line_of_the_main_values() -> None:
    payload = transaction("2024-03-01", "-3.20", "COSTA COFFEE", reference="R1")
    assert search.summary(payload) == "COSTA COFFEE · -3.20 · GBP"
    assert search.summary({"date": "2024-01-01", "x": "  two   words "}) == "two words"
    assert search.summary({"name": "a" * 200}) == "a" * 119 + "…"
    assert search.summary({"flag": True, "list": [1]}) == ""


# -- kept up to date ------------------------------------------------------------------------


def ingest(vault: Vault, *descriptions: str, name: str = "a.csv"):
    items = [
        prepared(transaction(f"2024-01-{n + 1:02d}", "-1.00", d))
        for n, d in enumerate(descriptions)
    ]
    return vault.ingest(SourceInfo("test", name, name.encode()), [items])


def found(
    vault: Vault, query: str, category: str | None = None
) -> list[tuple[str, int, list[int]]]:
    return [(c, n, [r.id for r in rs]) for c, n, rs in vault.search(query, category=category)]


def test_import_indexes_each_record_and_a_query_needs_every_word(vault: Vault) -> None:
    ingest(vault, "COSTA COFFEE", "Coffee beans", "TESCO STORES")
    assert found(vault, "coffee") == [("transactions", 2, [2, 1])]  # newest first
    assert found(vault, "2024") == found(vault, "1.00") == found(vault, "01") == []
    assert found(vault, "costa coffee") == [("transactions", 1, [1])]
    assert found(vault, "coffee tesco") == []
    assert found(vault, "cof") == []  # whole words only
    assert found(vault, "gbp") == [("transactions", 3, [3, 2, 1])]
    assert found(vault, "!") == []


def test_importing_the_same_file_again_adds_no_term(vault: Vault) -> None:
    ingest(vault, "COSTA COFFEE", "Coffee beans")
    before = index.count_terms(vault.conn)
    again = ingest(vault, "COSTA COFFEE", "Coffee beans", name="b.csv")
    assert (again.new, again.duplicate) == (0, 2)
    assert index.count_terms(vault.conn) == before
    # A file with one old and one new record indexes the new one only, under its own id.
    mixed = ingest(vault, "COSTA COFFEE", "Coffee beans", "PRET COFFEE", name="c.csv")
    assert (mixed.new, mixed.duplicate) == (1, 2)
    new_id = vault.conn.execute("SELECT max(id) FROM records").fetchone()[0]
    assert found(vault, "coffee") == [("transactions", 3, [new_id, 2, 1])]
    assert found(vault, "pret") == [("transactions", 1, [new_id])]
    words = ["gbp", "pret", "coffee", "vis"]  # not the amount's digits, nor the date's
    payload = transaction("2024-01-03", "-1.00", "PRET COFFEE")
    assert search.payload_words(payload, "transactions") == words
    terms = [vault.terms.term(w) for w in words]
    assert index.terms_of(vault.conn, new_id) == sorted(terms)
    assert index.record_terms(vault.conn, new_id) == terms


def test_write_back_indexes_the_2nd_and_the_100th_record(vault: Vault) -> None:
    ids = []
    with dbmod.transaction(vault.conn):
        for n in range(1, 101):
            payload = transaction("2024-05-01", f"-{n}.00", f"PAYEE{n} lunch")
            rid, created = vault.add_record(
                "transactions", "2024-05-01", payload, source="client:x"
            )
            assert created
            ids.append(rid)
        again = vault.add_record(
            "transactions",
            "2024-05-01",
            transaction("2024-05-01", "-2.00", "PAYEE2 lunch"),
            source="client:x",
        )
    assert again == (ids[1], False)
    assert found(vault, "payee2") == [("transactions", 1, [ids[1]])]
    assert found(vault, "payee100 LUNCH") == [("transactions", 1, [ids[99]])]
    assert vault.search("lunch")[0][1] == 100
    assert len(vault.search("lunch")[0][2]) == 10


def test_forgetting_a_category_deletes_its_terms(vault: Vault) -> None:
    ingest(vault, "COSTA COFFEE")
    energy = prepared(transaction("2024-02-01", "1.00", "COFFEE MACHINE"))
    energy = energy.__class__("energy", energy.occurred_at, energy.plain, None, 0)
    vault.ingest(SourceInfo("test", "e.csv", b"e"), [[energy]])
    assert [g[:2] for g in found(vault, "coffee")] == [("energy", 1), ("transactions", 1)]
    forget.forget(vault, "transactions")
    assert found(vault, "coffee") == [("energy", 1, [2])]
    assert vault.conn.execute("SELECT DISTINCT record_id FROM search_terms").fetchall() == [(2,)]


def test_replacing_the_profile_and_expiring_intentions_delete_their_terms(vault: Vault) -> None:
    profile.save(vault, {"name": "Ada Lovelace"})
    profile.save(vault, {"name": "Grace Hopper"})
    assert found(vault, "lovelace") == []
    assert [g[:2] for g in found(vault, "hopper")] == [("profile", 1)]
    rid, _ = intentions.add(vault, {"text": "Buy a bicycle", "expires_at": "2099-01-01"})
    assert found(vault, "bicycle") == [("intentions", 1, [rid])]
    assert intentions.remove_expired(vault, on=date(2100, 1, 1)) == 1
    assert found(vault, "bicycle") == []
    assert index.terms_of(vault.conn, rid) == []


def test_the_file_holds_no_word_in_the_clear(vault: Vault, settings) -> None:
    ingest(vault, "ZANZIBARITE QUARTZ")
    dbmod.checkpoint_wal(vault.conn)
    raw = settings.db_path.read_bytes()
    assert b"zanzibarite" not in raw.lower()
    assert b"quartz" not in raw.lower()
    assert vault.terms.term("zanzibarite") in raw


# -- a vault from before the index ------------------------------------------------------------


def unindex(vault: Vault) -> None:
    """Make the vault look as an older one upgraded to schema 8 does: records, no terms."""
    with dbmod.transaction(vault.conn):
        vault.conn.execute("DELETE FROM search_terms")
        vault.conn.execute("DELETE FROM meta WHERE key = 'search_indexed'")


def test_the_first_unlock_indexes_an_older_vault_in_batches(settings, monkeypatch) -> None:
    with Vault.create(settings, PASSPHRASE) as vault:
        ingest(vault, *[f"OLD SHOP {n}" for n in range(1, 8)])
        unindex(vault)
        assert not search.complete(vault.conn)
        assert found(vault, "shop") == []
    batches = []
    real = index.rows_after

    def counted(conn, after, limit):
        rows = real(conn, after, limit)
        batches.append((after, [r[0] for r in rows]))
        return rows

    monkeypatch.setattr(index, "rows_after", counted)
    monkeypatch.setattr(search, "FILL_BATCH", 3)
    with Vault.open(settings, PASSPHRASE) as vault:
        assert batches == [(0, [1, 2, 3]), (3, [4, 5, 6]), (6, [7])]
        assert search.complete(vault.conn)
        assert keystore.get_meta(vault.conn, search.PROGRESS) == "6"
        assert found(vault, "old shop") == [("transactions", 7, [7, 6, 5, 4, 3, 2, 1])]
    batches.clear()
    Vault.open(settings, PASSPHRASE).close()
    assert batches == []  # complete: never again


def test_an_interrupted_fill_goes_on_where_it_stopped(settings, monkeypatch) -> None:
    with Vault.create(settings, PASSPHRASE) as vault:
        ingest(vault, *[f"OLD SHOP {n}" for n in range(1, 6)])
        unindex(vault)
        with dbmod.transaction(vault.conn):
            keystore.set_meta(vault.conn, search.PROGRESS, "3")
        assert search.fill(vault.conn, vault.terms, vault._plain_or_none) == 2
        assert found(vault, "shop") == [("transactions", 2, [5, 4])]


def test_a_new_vault_and_an_empty_old_one_need_no_fill(vault: Vault) -> None:
    assert keystore.get_meta(vault.conn, search.DONE) == "1"
    assert len(keystore.get_meta(vault.conn, search.SALT)) == 16


def test_values_are_split_before_they_are_normalised() -> None:
    # A value opening with a combining accent does not join the value before it ("café").
    assert search.payload_words({"a": "cafe", "b": "\u0301te"}) == ["cafe", "te"]
    # ASCII and full-width text give the same words (ASCII skips NFKC; it is its own form).
    assert search.words("COFFEE ＣＯＦＦＥＥ") == ["coffee", "coffee"]


def test_a_term_is_the_hmac_sha256_of_the_word_under_the_search_key(vault: Vault) -> None:
    key = vault.derived_secret("search", search.salt(vault.conn))
    for word in ("coffee", "café", "東京"):
        expected = hmac.digest(key, word.encode(), "sha256")[: search.TERM_BYTES]
        assert vault.terms.term(word) == expected
        assert vault.terms.term(word) == expected  # from the cache
