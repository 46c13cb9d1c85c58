"""The one-record page: fields by label with values written for a person, the source file,
when the record was stored, and which businesses read it through the API (from the access
log's ``record`` and ``span`` fields), never a record outside what a business read."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

from babel.dates import format_date

from pds import clock
from pds.audit.verify import verify
from pds.importer import import_file
from pds.vault import SourceInfo
from tests.conftest import fixture
from tests.factories import prepared, transaction
from tests.oauth_kit import bearer, seed

SPRING = [
    {
        "type": "pds_records",
        "actions": ["read"],
        "categories": ["transactions"],
        "fields": ["date", "amount"],
        "time_range": {"from": "2024-02-01", "to": "2024-04-30"},
        "purpose": "dpv:ServiceProvision",
    }
]
NONE = "No business has read this record."


def readers(kit, record_id: int) -> list[str]:
    page = kit.http.get(f"/records/{record_id}")
    assert page.status_code == 200, page.text
    if NONE in page.text:
        return []
    found = re.search(r'<ul class="readers">(.*?)</ul>', page.text, re.S)
    assert found, page.text
    return re.findall(r"<li>([^<]*)</li>", found[1])


def read_entries(vault) -> list[dict]:
    rows = vault.conn.execute("SELECT entry FROM audit_log ORDER BY idx").fetchall()
    entries = [json.loads(r[0]) for r in rows]
    return [e for e in entries if e["action"] == "api.records.read"]


def test_record_fields_by_label_with_source_and_storage_time(kit, vault) -> None:
    ids = seed(vault)
    kit.login()
    page = kit.http.get(f"/records/{ids[2]}")
    assert page.status_code == 200
    text = page.text
    fields = re.findall(r'<tr><th scope="row">([^<]*)</th><td>([^<]*)</td></tr>', text)
    assert fields == [
        ("Amount", "-£3.00"),
        ("Currency", "GBP"),
        ("Description", "SHOP 3"),
        ("Type", "VIS"),
        ("Reference", "R3"),
        ("Date", "5 Mar 2024"),
    ]
    assert '<dd><a href="/data/transactions">transactions</a></dd>' in text
    assert "<dt>Date</dt>\n  <dd>5 Mar 2024</dd>" in text
    assert "<dt>Source file</dt>\n  <dd>seed.csv</dd>" in text
    stored = vault.conn.execute("SELECT created_at FROM records WHERE id = ?", (ids[2],))
    assert stored.fetchone()[0][:10] == clock.utcnow().date().isoformat()
    assert "<dt>Added to your vault</dt>" in text
    assert NONE in text
    assert "{" not in page.text.split("<main>")[1]


def test_who_read_a_record_comes_from_the_api_reads_that_returned_it(
    kit, vault, monkeypatch
) -> None:
    ids = seed(vault)  # transactions 2024-01-05 .. 2024-06-05, energy 2024-02-01
    acme, acme_secret = kit.add_client("Acme Energy")
    acme_token = kit.tokens(acme, acme_secret, scope="read:transactions")["access_token"]
    budget, budget_secret = kit.add_client("Budget App")
    budget_token = kit.tokens(
        budget, budget_secret, scope=None, authorization_details=json.dumps(SPRING)
    )["access_token"]

    first = kit.http.get(
        "/api/v1/records?category=transactions&limit=2", headers=bearer(acme_token)
    )
    assert [r["id"] for r in first.json["records"]] == ids[0:2]
    one = kit.http.get(f"/api/v1/records/{ids[4]}", headers=bearer(acme_token))
    assert one.status_code == 200
    again = kit.http.get(f"/api/v1/records/{ids[0]}", headers=bearer(acme_token))
    assert again.status_code == 200
    spring = kit.http.get("/api/v1/records?category=transactions", headers=bearer(budget_token))
    assert [r["id"] for r in spring.json["records"]] == ids[1:4]  # fields cut: parsed path
    empty = kit.http.get(
        "/api/v1/records?category=transactions&since=2025-01-01", headers=bearer(acme_token)
    )
    assert empty.json["records"] == []

    entries = read_entries(vault)
    assert [(e.get("span"), e.get("record"), e["count"]) for e in entries] == [
        ([["2024-01-05", ids[0]], ["2024-02-05", ids[1]]], None, 2),
        (None, ids[4], 1),
        (None, ids[0], 1),
        ([["2024-02-05", ids[1]], ["2024-04-05", ids[3]]], None, 3),
        (None, None, 0),
    ]
    for e in entries:  # no record contents: no description, no amount
        assert "SHOP" not in json.dumps(e)
        assert "-1.00" not in json.dumps(e)

    # a transaction stored later, inside the first page's span: not read by anyone
    later = clock.utcnow() + timedelta(minutes=2)
    monkeypatch.setattr(clock, "utcnow", lambda: later)
    vault.ingest(
        SourceInfo("test", "later.csv", b"later"),
        [[prepared(transaction("2024-01-20", "-9.00", "SHOP LATER"))]],
    )
    newest = vault.conn.execute("SELECT max(id) FROM records").fetchone()[0]

    # the owner is signed in (they consented); reads are dated by their entries' UTC day
    today = format_date(date.fromisoformat(entries[0]["time"][:10]), "medium", "en_GB")
    assert readers(kit, ids[0]) == [f"Read by Acme Energy on {today} (2 times)"]
    assert readers(kit, ids[1]) == [
        f"Read by Acme Energy on {today} (once)",
        f"Read by Budget App on {today} (once)",
    ]
    assert readers(kit, ids[2]) == [f"Read by Budget App on {today} (once)"]
    assert readers(kit, ids[3]) == [f"Read by Budget App on {today} (once)"]
    assert readers(kit, ids[4]) == [f"Read by Acme Energy on {today} (once)"]
    assert readers(kit, ids[5]) == []  # June: outside every page and single read
    assert readers(kit, ids[6]) == []  # energy, dated inside the first span: another category
    assert readers(kit, newest) == []  # stored after the read that spans its date
    assert verify(vault.log_source()).ok


def test_a_contact_record_written_as_its_card_writes_it(kit, vault) -> None:
    import_file(vault, fixture("vcard/John_Doe_IPHONE.vcf"))
    kit.login()
    page = kit.http.get("/records/1")
    fields = dict(re.findall(r'<tr><th scope="row">([^<]*)</th><td>([^<]*)</td></tr>', page.text))
    assert fields["Name"] == "Mr. John Richter James Doe Sr."
    assert "Name parts" not in fields  # they say what the name says
    assert fields["Email addresses"] == "john.doe@ibm.com"
    assert fields["Phone numbers"] == (
        "905-555-1234 (mobile); 905-666-1234 (home); 905-777-1234 (work); "
        "905-888-1234 (home, fax); 905-999-1234 (work, fax); 905-111-1234 (pager); 905-222-1234"
    )
    assert fields["Organisation"] == "IBM, Accounting"
    assert fields["Birthday"] == "6 Jun 2012"
    assert "<dt>Source file</dt>\n  <dd>John_Doe_IPHONE.vcf</dd>" in page.text


def test_web_addresses_as_hosts_and_no_namespace_uris(kit, vault) -> None:
    """A web address is written as the host it names (a Google redirect as the host it
    leads to), never as a URL; a FHIR resource is described in words and its raw codings,
    identifiers and the URIs that name their vocabularies are left out."""
    import_file(vault, fixture("google-takeout/My_Activity_Search.json"))
    import_file(vault, fixture("fhir/synthea-r4-transaction-bundle.json"))
    kit.login()
    by_title = {r.payload["title"]: r.id for r in vault.records("activity")}
    fields = {}
    for title, record_id in by_title.items():
        page = kit.http.get(f"/records/{record_id}").text
        fields[title] = dict(re.findall(r'<tr><th scope="row">([^<]*)</th><td>([^<]*)</td>', page))
    assert {t: f["Site"] for t, f in fields.items()} == {
        "Visited data liberation - How to download Google Search history? - Web ...": (
            "webapps.stackexchange.com"
        ),
        'Searched for "myactivity" google export': "google.com",
    }
    (patient,) = [r for r in vault.records("health") if r.payload["type"] == "Patient"]
    page = kit.http.get(f"/records/{patient.id}").text
    main = page.split("<main")[1].split("</main>")[0]
    assert re.findall(r"https?://", main) == []
    assert "<dt>Type</dt><dd>Patient</dd>" in main  # described in words, the raw resource left out
    assert "999-93-7537" not in main


def fields_of(kit, record_id: int) -> list[tuple[str, str]]:
    page = kit.http.get(f"/records/{record_id}")
    assert page.status_code == 200
    return re.findall(r'<tr><th scope="row">([^<]*)</th><td>([^<]*)</td></tr>', page.text)


def test_records_written_as_their_views_write_them(kit, vault) -> None:
    import_file(vault, fixture("greenbutton/TestGBDataHourlyNineDaysBinnedDaily.xml"))
    import_file(vault, fixture("google-takeout/My_Activity_Search.json"))
    import_file(vault, fixture("apple-health/tdda-export6s3sample.xml"))
    import_file(vault, fixture("fhir/synthea-r4-transaction-bundle.json"))
    kit.login()
    reading = next(r for r in vault.records("energy") if r.payload["value"] == "273")
    assert fields_of(kit, reading.id)[:7] == [
        ("Currency", "USD"),
        ("Start", "1 Jan 2014, 05:00:00"),
        ("Duration", "1 hour"),
        ("Usage", "0.273 kWh"),
        ("Cost", "US$0.01"),
        ("Direction", "Imported"),
        ("Commodity", "Electricity"),
    ]
    assert "greenbuttondata.org" not in kit.http.get(f"/records/{reading.id}").text
    search = next(iter(vault.records("activity")))
    assert ("Site", "google.com") in fields_of(kit, search.id)
    assert "https://www.google.com" not in kit.http.get(f"/records/{search.id}").text
    steps = next(
        r for r in vault.records("health") if r.payload.get("type", "").endswith("StepCount")
    )
    assert fields_of(kit, steps.id)[0] == ("Type", "Steps")
    for rec in vault.records("health"):
        text = kit.http.get(f"/records/{rec.id}").text.split("<main>")[1]
        assert "http://snomed.info" not in text, rec.id
        assert "http://loinc.org" not in text, rec.id
        assert "Full record" not in text
        assert '<th scope="row">Details' not in text


def test_a_contact_has_no_date_of_its_own(kit, vault) -> None:
    import_file(vault, fixture("vcard/John_Doe_IPHONE.vcf"))
    kit.login()
    page = kit.http.get("/records/1").text
    assert "<dt>Date</dt>" not in page
    assert "<dt>Added to your vault</dt>" in page
