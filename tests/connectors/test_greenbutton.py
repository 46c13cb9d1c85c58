"""The Green Button (ESPI) connector against real feeds and hand-made variants."""

from __future__ import annotations

import io
import tracemalloc
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors import greenbutton
from connectors.base import Record, strict
from connectors.greenbutton import GreenButtonConnector
from pds import registry
from pds.errors import ImportFormatError
from pds.importer import import_file
from pds.payloads import EnergySchema, fast_validator
from pds.vault import Vault
from tests.conftest import fixture
from tests.factories import mutations
from tests.skipbad import assert_skip_bad

FIXTURES = fixture("greenbutton")
NIST = "TestGBDataHourlyNineDaysBinnedDaily.xml"
OPOWER = "opower-gas-billing-2021-05-26_to_2024-04-25.xml"
BROKEN = "gas-provider-batch-2024-07-16.xml"
NIST_BASE = "https://services.greenbuttondata.org/DataCustodian/espi/1_1/resource/RetailCustomer/2"
FAST = fast_validator(EnergySchema())


def parse(data: bytes, filename: str = "usage.xml") -> list[Record]:
    return list(strict(GreenButtonConnector().parse(io.BytesIO(data), filename), filename))


def parse_fixture(name: str) -> list[Record]:
    with (FIXTURES / name).open("rb") as stream:
        return list(strict(GreenButtonConnector().parse(stream, name), name))


def refusal(data: bytes, filename: str = "usage.xml") -> str:
    with pytest.raises(ImportFormatError) as caught:
        parse(data, filename)
    return caught.value.message


ENTRY = "<entry>{links}<content>{content}</content></entry>"
USAGE_POINT = (
    '<UsagePoint xmlns="http://naesb.org/espi"><ServiceCategory><kind>0</kind>'
    "</ServiceCategory></UsagePoint>"
)
READING_TYPE = (
    '<ReadingType xmlns="http://naesb.org/espi"><currency>978</currency>'
    "<flowDirection>19</flowDirection><powerOfTenMultiplier>{power}</powerOfTenMultiplier>"
    "<uom>{uom}</uom></ReadingType>"
)
BLOCK = (
    '<IntervalBlock xmlns="http://naesb.org/espi"><interval><duration>1800</duration>'
    "<start>1700000000</start></interval>{readings}</IntervalBlock>"
)
READING = (
    "<IntervalReading><cost>{cost}</cost><ReadingQuality><quality>8</quality></ReadingQuality>"
    "<timePeriod><duration>900</duration><start>{start}</start></timePeriod>"
    "<value>{value}</value></IntervalReading>"
)


def link(rel: str, href: str) -> str:
    return f'<link rel="{rel}" href="{href}"/>'


def feed(
    *,
    power: str = "0",
    uom: str = "72",
    start: str = "1700000000",
    value: str = "1234",
    cost: str = "150000",
    order: tuple[str, ...] = ("up", "mr", "rt", "ib"),
    block_up: str = "UsagePoint/1/MeterReading/1/IntervalBlock",
    meter_related: tuple[str, ...] = ("ReadingType/1",),
) -> bytes:
    """A small feed: UsagePoint, MeterReading, ReadingType, one block of two readings."""
    readings = READING.format(cost=cost, start=start, value=value) + READING.format(
        cost="-50000", start="1700000900", value="-7"
    )
    entries = {
        "up": ENTRY.format(
            links=link("self", "UsagePoint/1") + link("related", "UsagePoint/1/MeterReading"),
            content=USAGE_POINT,
        ),
        "mr": ENTRY.format(
            links=link("self", "UsagePoint/1/MeterReading/1")
            + link("up", "UsagePoint/1/MeterReading")
            + "".join(link("related", href) for href in meter_related),
            content='<MeterReading xmlns="http://naesb.org/espi"/>',
        ),
        "rt": ENTRY.format(
            links=link("self", "ReadingType/1"), content=READING_TYPE.format(power=power, uom=uom)
        ),
        "ib": ENTRY.format(
            links=link("self", "UsagePoint/1/MeterReading/1/IntervalBlock/1")
            + link("up", block_up),
            content=BLOCK.format(readings=readings),
        ),
    }
    body = "\n".join(entries[key] for key in order)
    return f'<?xml version="1.0"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n{body}\n</feed>'.encode()


def reading(**fields) -> dict:
    payload = {
        "start": "2023-11-14T22:13:20Z",
        "duration": "900",
        "value": "1234",
        "unit": "Wh",
        "cost": "1.50",
        "currency": "EUR",
        "flow": "reverse",
        "commodity": "electricity",
        "usage_point": "UsagePoint/1",
        "meter_reading": "UsagePoint/1/MeterReading/1",
        "quality": "8",
    }
    payload.update(fields)
    return payload


# -- real feeds ----------------------------------------------------------------------------


def test_every_fixture_is_tested():
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted([NIST, OPOWER, BROKEN])


def test_nist_sample_216_hourly_readings():
    records = parse_fixture(NIST)
    assert len(records) == 216
    assert records[0] == Record(
        "energy",
        "2014-01-01T05:00:00Z",
        {
            "start": "2014-01-01T05:00:00Z",
            "duration": "3600",
            "value": "273",
            "unit": "Wh",
            "cost": "0.00819",
            "currency": "USD",
            "flow": "forward",
            "commodity": "electricity",
            "usage_point": f"{NIST_BASE}/UsagePoint/2",
            "meter_reading": f"{NIST_BASE}/UsagePoint/2/MeterReading/01",
            "quality": None,
        },
        None,
        "line 143",
    )
    assert records[0].where == "line 143"
    assert records[5].payload["value"] == "819"
    assert records[5].payload["cost"] == "0.02457"
    assert records[-1].occurred_at == "2014-01-10T04:00:00Z"
    assert records[-1].where == "line 2214"
    assert sum(Decimal(r.payload["value"]) for r in records) == Decimal("199563")
    assert sum(Decimal(r.payload["cost"]) for r in records) == Decimal("22.05567")
    assert {r.payload["duration"] for r in records} == {"3600"}
    assert all(FAST(r.payload) and EnergySchema().load(r.payload) == r.payload for r in records)


def test_opower_gas_therms_scaled_by_power_of_ten():
    records = parse_fixture(OPOWER)
    assert len(records) == 35
    assert records[0].payload == {
        "start": "2021-05-26T00:00:00Z",
        "duration": "3024000",
        "value": "37.000",
        "unit": "therm",
        "cost": "51.00",
        "currency": "USD",
        "flow": None,
        "commodity": "gas",
        "usage_point": "/v1/BillingAccount/1234567890/UsagePoint/NET_USAGE",
        "meter_reading": "/v1/User/1234567890/UsagePoint/NET_USAGE/MeterReading/1",
        "quality": None,
    }
    assert records[5].payload["cost"] == "230.42"
    assert records[-1].payload["start"] == "2024-03-27T00:00:00Z"
    assert records[-1].payload["value"] == "91.000"
    assert sum(Decimal(r.payload["value"]) for r in records) == Decimal("3484")
    assert sum(Decimal(r.payload["cost"]) for r in records) == Decimal("7207.11")
    assert all(FAST(r.payload) for r in records)


def test_broken_gas_export_is_refused_with_the_reason():
    """Decision: its ReadingType is empty, so no value has a unit or a scale, and every start
    is the same fractional export time; nothing in it is sound enough to keep."""
    with pytest.raises(ImportFormatError) as caught:
        parse_fixture(BROKEN)
    assert caught.value.message == (
        f"{BROKEN} line 662: ReadingType ReadingType/07 has no uom (unit of measure), "
        "so its readings cannot be read"
    )


@pytest.mark.parametrize("name", [NIST, OPOWER, BROKEN])
def test_detected_as_green_button_and_nothing_else(name):
    head = (FIXTURES / name).read_bytes()[: registry.HEAD_BYTES]
    assert registry.detect(head, name).name == "greenbutton"


def test_imports_exactly_and_once(vault: Vault):
    summary = import_file(vault, FIXTURES / OPOWER)
    assert (summary.connector, summary.new, summary.duplicate) == ("greenbutton", 35, 0)
    stored = list(vault.records("energy"))
    assert stored[0].occurred_at == "2021-05-26T00:00:00Z"
    assert stored[0].payload["value"] == "37.000"
    again = import_file(vault, FIXTURES / OPOWER)
    assert (again.new, again.duplicate) == (0, 35)


def test_broken_import_leaves_the_vault_as_it_was(vault: Vault):
    with pytest.raises(ImportFormatError):
        import_file(vault, FIXTURES / BROKEN)
    assert vault.status()["records"] == 0
    assert vault.sources() == []


# -- hand-made feeds ---------------------------------------------------------------------------


def test_small_feed_payloads():
    records = parse(feed())
    assert [r.payload for r in records] == [
        reading(),
        reading(start="2023-11-14T22:28:20Z", value="-7", cost="-0.50"),
    ]
    assert [r.where for r in records] == ["line 6", "line 6"]


def test_namespaces_matched_by_uri_not_prefix():
    plain = parse(feed())
    prefixed = (
        feed()
        .decode()
        .replace(
            '<feed xmlns="http://www.w3.org/2005/Atom">',
            '<x:feed xmlns:x="http://www.w3.org/2005/Atom" xmlns:q="http://naesb.org/espi">',
        )
        .replace("</feed>", "</x:feed>")
    )
    for tag in ("entry", "link", "content"):
        prefixed = prefixed.replace(f"<{tag}", f"<x:{tag}").replace(f"</{tag}>", f"</x:{tag}>")
    prefixed = prefixed.replace(' xmlns="http://naesb.org/espi"', "")
    for tag in ("UsagePoint", "ServiceCategory", "kind", "MeterReading", "ReadingType", "currency",
                "flowDirection", "powerOfTenMultiplier", "uom", "IntervalBlock", "interval",
                "duration", "start", "IntervalReading", "cost", "ReadingQuality", "quality",
                "timePeriod", "value"):  # fmt: skip
        prefixed = prefixed.replace(f"<{tag}>", f"<q:{tag}>").replace(f"</{tag}>", f"</q:{tag}>")
        prefixed = prefixed.replace(f"<{tag}/>", f"<q:{tag}/>")
    assert "<q:IntervalReading>" in prefixed
    assert "<x:entry>" in prefixed
    assert [r.payload for r in parse(prefixed.encode())] == [r.payload for r in plain]


def test_a_lookalike_namespace_is_not_espi():
    data = feed().replace(b'xmlns="http://naesb.org/espi"', b'xmlns="http://naesb.org/espi/x"')
    assert refusal(data) == (
        "usage.xml: the feed holds no IntervalReading in the ESPI namespace "
        "(http://naesb.org/espi); nothing to import"
    )


def test_entries_in_any_order_are_linked():
    records = parse(feed(order=("ib", "rt", "mr", "up")))
    assert [r.payload for r in records][0] == reading()


def test_feed_without_usage_point():
    records = parse(feed(order=("mr", "rt", "ib")))
    assert records[0].payload == reading(commodity=None, usage_point=None)


def test_readings_waiting_for_links_are_capped(monkeypatch):
    monkeypatch.setattr(greenbutton, "MAX_PENDING", 1)
    assert refusal(feed(order=("ib", "mr", "rt"))) == (
        "usage.xml line 3: more than 1 readings wait for a MeterReading or ReadingType that "
        "has not appeared"
    )


def test_power_of_ten_and_unit():
    assert parse(feed(power="3", uom="169"))[0].payload["value"] == "1234000"
    assert parse(feed(power="-2"))[1].payload["value"] == "-0.07"
    assert parse(feed(power="-2"))[0].payload["unit"] == "Wh"


def test_block_without_meter_reading_is_refused():
    assert refusal(feed(block_up="Elsewhere/IntervalBlock", order=("up", "rt", "ib"))) == (
        "usage.xml line 5: IntervalBlock UsagePoint/1/MeterReading/1/IntervalBlock/1 belongs "
        "to no MeterReading in the feed"
    )


def test_meter_reading_without_reading_type_is_refused():
    assert refusal(feed(meter_related=())) == (
        "usage.xml line 6: IntervalBlock UsagePoint/1/MeterReading/1/IntervalBlock/1: its "
        "MeterReading UsagePoint/1/MeterReading/1 names no ReadingType in the feed"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"start": "1721154384.66136"},
            'usage.xml line 6: IntervalReading start "1721154384.66136" is not whole seconds '
            "since 1970-01-01 UTC",
        ),
        ({"value": "12,5"}, 'usage.xml line 6: IntervalReading value "12,5" is not a whole number'),
        ({"cost": "1.5"}, 'usage.xml line 6: IntervalReading cost "1.5" is not a whole number'),
        (
            {"uom": "999"},
            'usage.xml line 5: ReadingType ReadingType/1: uom "999" is not a unit pds knows',
        ),
        (
            {"uom": ""},
            "usage.xml line 5: ReadingType ReadingType/1 has no uom (unit of measure), so its "
            "readings cannot be read",
        ),
        (
            {"power": "x"},
            'usage.xml line 5: ReadingType ReadingType/1: powerOfTenMultiplier "x" is not a '
            "whole number from -12 to 12",
        ),
    ],
)
def test_bad_values_are_refused_naming_the_line(change, message):
    assert refusal(feed(**change)) == message


def test_skip_bad_leaves_out_the_bad_reading(vault, tmp_path):
    path = tmp_path / "usage.xml"
    path.write_bytes(feed(value="12,5"))
    assert_skip_bad(
        vault, path, ['usage.xml line 6: IntervalReading value "12,5" is not a whole number'], new=1
    )
    assert [r.payload for r in vault.records()] == [
        reading(start="2023-11-14T22:28:20Z", value="-7", cost="-0.50")
    ]


def test_not_an_atom_feed():
    assert refusal(b'<feed xmlns="urn:other"/>') == (
        "usage.xml line 1: the root element is <feed> in namespace urn:other, not an Atom "
        "<feed> (http://www.w3.org/2005/Atom); this is not a Green Button file"
    )


def test_malformed_xml_names_the_line():
    data = feed().replace(b"</IntervalBlock>", b"</IntervalBlok>")
    assert refusal(data) == "usage.xml line 6: not well-formed XML (mismatched tag)"


def test_size_cap(monkeypatch):
    monkeypatch.setattr(greenbutton, "MAX_BYTES", 1000)
    assert refusal(feed() * 2) == (
        "usage.xml: the file is larger than the 1,000 bytes pds reads from this format"
    )


def test_memory_stays_flat_while_streaming():
    """1,000 IntervalBlock entries of 24 readings (4.8 MB) with under 2 MB traced at peak
    (23 MB when the tree is kept): each entry is dropped once read."""
    head, _, tail = feed().decode().rpartition("</feed>")
    block = ENTRY.format(
        links=link("up", "UsagePoint/1/MeterReading/1/IntervalBlock"),
        content=BLOCK.format(readings=READING.format(cost="1", start="1700000000", value="5") * 24),
    )
    data = (head + block * 1000 + tail + "</feed>").encode()
    tracemalloc.start()
    try:
        count = sum(1 for _ in GreenButtonConnector().parse(io.BytesIO(data), "usage.xml"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 2 + 24_000
    assert peak < 2_000_000


# -- fuzz --------------------------------------------------------------------------------------

SAMPLES = [(FIXTURES / OPOWER).read_bytes(), feed()]


@given(st.one_of(st.binary(max_size=300), mutations(SAMPLES)))
def test_fuzz_records_or_a_clean_error(data):
    try:
        records = parse(data)
    except ImportFormatError as exc:
        message = exc.message
    else:
        assert all(EnergySchema().load(r.payload) == r.payload for r in records)
        return
    assert message.startswith("usage.xml")
