"""The health page on the real FHIR and Apple Health files: the patient, conditions,
medications, visits and measurements in words and dates, charts of repeated measures,
reference resources as context (never as dated records), and one record described."""

from __future__ import annotations

import json
import re

import pytest

from pds.http.web.views import health
from pds.importer import import_file
from tests.conftest import fixture
from tests.http.web.test_energy_view import new_york, numbers, text  # noqa: F401 - a fixture

SYNTHEA = fixture("fhir/synthea-r4-transaction-bundle.json")
SEARCHSET = fixture("fhir/hl7-bundle-example-searchset.json")
APPLE = [
    fixture("apple-health/tdda-export6s3sample.xml"),
    fixture("apple-health/apple-health-parser-export.xml"),
]


def chart_titles(page: str) -> list[str]:
    return re.findall(r'<span class="chart-title">([^<]*)</span>', page)


def listed(page: str) -> list[str]:
    return re.findall(r'<a href="/records/(\d+)">View', page)


def test_synthea_patient_conditions_medications_visits(kit, vault) -> None:
    import_file(vault, SYNTHEA)
    kit.login()
    page = kit.http.get("/data/health")
    assert page.status_code == 200
    words = text(page.text)
    assert "Patient Name Mr. Aaron697 Brekke496 Born 10 Dec 1945 Gender male" in words
    assert " style=" not in page.text  # the strict CSP: no inline style or script
    assert "<script>" not in page.text
    assert re.findall(r'(?:src|href|action)="(https?:)?//', page.text) == []
    assert "Prediabetes , since 21 Dec 1987 (active)" in words
    assert "Polyp of colon , since 7 Dec 2010, resolved 31 Mar 2012" in words
    assert (
        "Ibuprofen 200 MG Oral Tablet , prescribed 21 May 2016 by Dr. Bennett146 "
        "Breitenberg711 (stopped)" in words
    )
    assert "Td (adult) preservative free , 10 Apr 2017" in words
    assert (
        "Emergency room admission (procedure) , 21 May 2016, with Dr. Bennett146 "
        "Breitenberg711, at MORTON HOSPITAL" in words
    )
    assert "All 13 Immunisations" in words
    assert "All 21 Visits" in words
    # the latest of each measurement, with its unit, and components for blood pressure
    assert "Body Weight 84.168 kg 22 Apr 2019 10" in words
    assert (
        "Blood Pressure Diastolic Blood Pressure 87.586 mm[Hg], "
        "Systolic Blood Pressure 132.472 mm[Hg] 22 Apr 2019 10" in words
    )
    assert "Tobacco smoking status NHIS Never smoker 22 Apr 2019 10" in words
    # reference resources: context of the records, and listed once as people and places
    assert "People and places in your records (5)" in words
    assert (
        "MORTON HOSPITAL : organization (Healthcare Provider), 88 WASHINGTON STREET, "
        "TAUNTON, MA" in words
    )
    assert "Dr. Mason910 Quitzon246 : practitioner, 1244 BROADWAY, RAYNHAM, MA" in words
    assert "Implantable defibrillator, device (physical object) : device" in words
    for dumped in ("0001-01-01", "{'", "http", "urn:uuid"):
        assert dumped not in words


def test_synthea_charts_of_repeated_measures(kit, vault) -> None:
    import_file(vault, SYNTHEA)
    kit.login()
    page = kit.http.get("/data/health")
    titles = chart_titles(page.text)
    assert len(titles) == 29  # 32 numeric measures, 3 of them taken once
    assert "Body Weight (kg)" in titles
    assert "Blood Pressure (mm[Hg])" in titles
    weight = numbers(page.text, f"measure-{titles.index('Body Weight (kg)') + 1}")
    assert len(weight) == 10
    assert weight[-1][1:] == ["84.17 kg"]
    pressure = numbers(page.text, f"measure-{titles.index('Blood Pressure (mm[Hg])') + 1}")
    assert pressure[-1][1:] == ["87.59 mm[Hg]", "132.47 mm[Hg]"]  # diastolic, systolic
    assert '<th scope="col" class="num">Systolic Blood Pressure</th>' in page.text


@pytest.mark.usefixtures("new_york")
def test_synthea_record_list_and_type_filter(kit, vault) -> None:
    import_file(vault, SYNTHEA)
    kit.login()
    first = kit.http.get("/data/health")
    assert len(listed(first.text)) == 50
    # 319 resources: the Patient, 2 Organizations, 2 Practitioners and the Device are
    # not dated records; 313 are, 300 of them before the last page
    last = kit.http.get("/data/health", query_string={"skip": "300"})
    rows = listed(last.text)
    assert len(rows) == 13
    words = text(last.text)
    assert words.count("undated Goal") == 5  # goals have no date: "undated", last
    assert "0001-01-01" not in last.text
    kinds = {vault.get(int(r)).payload["type"] for r in listed(first.text)}
    assert kinds.isdisjoint({"Organization", "Practitioner", "Device", "Patient"})

    conditions = kit.http.get("/data/health", query_string={"type": "Condition"})
    assert len(listed(conditions.text)) == 10
    words = text(conditions.text)
    assert '<option value="Condition" selected>Condition (10)</option>' in conditions.text
    assert "Conditions" in words
    assert "Visits" not in words
    assert "People and places" not in words
    assert "Patient Name" not in words
    assert "15 Nov 1965, 06:22:41 Condition Cardiac Arrest View" in words


def test_medication_reference_resolved(kit, vault, tmp_path) -> None:
    # the HL7 example's MedicationRequest names its Medication by reference only
    import_file(vault, SEARCHSET)
    kit.login()
    words = text(kit.http.get("/data/health").text)
    assert "Medications unnamed medication (unknown)" in words
    assert "People and places in your records (1) unnamed : medication" in words
    assert "undated Medication request unnamed medication View" in words
    assert "0001-01-01" not in words
    # the same bundle with the Medication named: the request shows that name
    bundle = json.loads(SEARCHSET.read_text())
    bundle["entry"][0]["resource"]["id"] = "3124"  # a new request, not the same again
    bundle["entry"][1]["resource"]["code"] = {"text": "Amoxicillin 250 mg"}
    named = tmp_path / "named.json"
    named.write_text(json.dumps(bundle))
    import_file(vault, named)
    source = str(vault.sources()[-1]["id"])
    words = text(kit.http.get("/data/health", query_string={"source": source}).text)
    assert "Medications Amoxicillin 250 mg (unknown)" in words
    assert "People and places in your records (1) Amoxicillin 250 mg : medication" in words


def test_apple_health_measures(kit, vault) -> None:
    for path in APPLE:
        import_file(vault, path)
    kit.login()
    page = kit.http.get("/data/health")
    titles = chart_titles(page.text)
    assert titles == [
        "Active energy burned (kcal)",
        "Activity summary (kcal)",
        "Distance walking running (km)",
        "Heart rate (bpm)",
        "Steps",
    ]
    heart = numbers(page.text, "measure-4")
    assert [r[1] for r in heart] == ["74 bpm", "75 bpm"]
    steps = numbers(page.text, "measure-5")
    assert len(steps) == 10
    assert steps[0][1] == "329"
    words = text(page.text)
    assert "Sleep analysis from Alexandre's iPhone In bed View" in words
    assert "Heart rate from Alexandre's Apple Watch 75 bpm View" in words
    assert "Patient" not in words
    assert "People and places" not in words
    steps_only = kit.http.get(
        "/data/health", query_string={"type": "HKQuantityTypeIdentifierStepCount"}
    )
    assert chart_titles(steps_only.text) == ["Steps"]
    assert len(listed(steps_only.text)) == 10


@pytest.fixture
def described(kit, vault):
    """``describe`` of the record of a type, in a request (the locale formats dates)."""
    import_file(vault, SYNTHEA)
    import_file(vault, fixture("apple-health/healthkit-to-sqlite-export.xml"))
    records = list(vault.records("health"))
    refs = health.references(vault, None)

    def of(kind: str, display: str | None = None) -> list[tuple[str, str]]:
        payload = next(
            r.payload
            for r in records
            if r.payload["type"] == kind and display in (None, r.payload["display"])
        )
        with kit.app.test_request_context():
            return health.describe(payload, refs)

    return of


def test_describe_a_record(described) -> None:
    assert described("MedicationRequest") == [
        ("Type", "Medication request"),
        ("Medication", "Ibuprofen 200 MG Oral Tablet"),
        ("Prescribed", "21 May 2016"),
        ("Prescriber", "Dr. Bennett146 Breitenberg711"),
        ("Status", "stopped"),
    ]
    assert described("Condition", "Polyp of colon") == [
        ("Type", "Condition"),
        ("Condition", "Polyp of colon"),
        ("Onset", "7 Dec 2010"),
        ("Resolved", "31 Mar 2012"),
        ("Status", "resolved"),
    ]
    assert described("Encounter")[:5] == [
        ("Type", "Encounter"),
        ("Visit", "Cardiac Arrest"),
        ("Started", "15 Nov 1965"),
        ("Ended", "15 Nov 1965"),
        ("With", "Dr. Bennett146 Breitenberg711"),
    ]
    assert described("Organization") == [
        ("Type", "Organization"),
        ("Name", "MORTON HOSPITAL"),
        ("Kind", "Healthcare Provider"),
        ("Address", "88 WASHINGTON STREET, TAUNTON, MA"),
    ]
    assert described("Goal") == [
        ("Type", "Goal"),
        ("What", "Hemoglobin A1c total in Blood < 7.0"),
        ("Date", "undated"),
    ]
    assert described("HKQuantityTypeIdentifierHeartRate")[:2] == [
        ("Type", "Heart rate"),
        ("Value", "72 bpm"),
    ]


def test_dates_narrow_the_records_not_the_patient(kit, vault) -> None:
    import_file(vault, SYNTHEA)
    kit.login()
    page = kit.http.get("/data/health", query_string={"from": "2016-01-01", "to": "2016-12-31"})
    words = text(page.text)
    assert "Patient Name Mr. Aaron697 Brekke496 Born 10 Dec 1945" in words
    assert "Conditions Fracture of clavicle , since 21 May 2016, resolved 20 Jun 2016 " in words
    assert "Viral sinusitis" not in words
    assert "People and places in your records (5)" in words
    assert "Visits" in words
    assert "All 21 Visits" not in words


def test_the_record_page_says_what_a_health_record_is(kit, vault) -> None:
    import_file(vault, SYNTHEA)
    kit.login()
    ibuprofen = next(
        r.id
        for r in vault.records("health")
        if r.payload["type"] == "MedicationRequest"
        and r.payload["display"] == "Ibuprofen 200 MG Oral Tablet"
    )
    page = kit.http.get(f"/records/{ibuprofen}").text
    assert (
        '<dl class="about what">\n  <dt>Type</dt><dd>Medication request</dd>\n'
        "  <dt>Medication</dt><dd>Ibuprofen 200 MG Oral Tablet</dd>\n"
        "  <dt>Prescribed</dt><dd>21 May 2016</dd>\n"
        "  <dt>Prescriber</dt><dd>Dr. Bennett146 Breitenberg711</dd>\n"
        "  <dt>Status</dt><dd>stopped</dd>\n  \n</dl>"
    ) in page
    organisation = next(r for r in vault.records("health") if r.payload["type"] == "Organization")
    shown = kit.http.get(f"/records/{organisation.id}").text
    assert "0001-01-01" not in shown
    assert "<dt>Date</dt>\n  <dd>undated</dd>" in shown
