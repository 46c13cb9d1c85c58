"""vCard 2.1 / 3.0 / 4.0: the three real address books, bad cards, and a fuzz test."""

from __future__ import annotations

import contextlib
import io
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from connectors.base import strict
from connectors.vcard import VcardConnector
from pds import registry
from pds.errors import ImportFormatError
from pds.importer import import_file
from pds.payloads import ContactSchema
from pds.vault import Vault
from tests.conftest import fixture
from tests.skipbad import assert_skip_bad

VCARD = VcardConnector()


def parse(data: bytes, name: str = "c.vcf") -> list:
    return list(strict(VCARD.parse(io.BytesIO(data), name), name))


def contacts(vault: Vault) -> list[dict]:
    return [r.payload for r in vault.records("contacts")]


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("vcard/John_Doe_ANDROID.vcf", 6),
        ("vcard/John_Doe_IPHONE.vcf", 1),
        ("vcard/rfc6350-example.vcf", 1),
    ],
)
def test_fixture_imports_exactly(vault: Vault, name: str, count: int) -> None:
    path = fixture(name)
    assert registry.detect(path.read_bytes()[:4096], path.name).name == "vcard"
    summary = import_file(vault, path)
    assert (summary.connector, summary.new, summary.duplicate, summary.rejected) == (
        "vcard",
        count,
        0,
        0,
    )
    again = import_file(vault, path)
    assert (again.new, again.duplicate) == (0, count)
    today = datetime.now(UTC).date().isoformat()  # no REV in these cards
    assert all(r.occurred_at == today for r in vault.records("contacts"))


def test_android_21_quoted_printable_and_cards_without_names(vault: Vault) -> None:
    import_file(vault, fixture("vcard/John_Doe_ANDROID.vcf"))
    cards = contacts(vault)
    assert [c["full_name"] for c in cards] == [
        None,
        None,
        "Ñ Ñ Ñ Ñ Ñ",
        "Ñ Ñ Ñ Ñ Ñ Ñ Ñ Ñ Ñ Ñ Ñ",
        "Ñ Ñ Ñ Ñ",
        "ÑÑÑÑ",
    ]
    assert cards[0]["emails"] == [{"value": "john.doe@company.com", "types": ["pref"]}]
    bob = cards[4]
    assert bob["name"] == {
        "family": "Ñ Ñ",
        "given": "Ñ Ñ Ñ",
        "additional": "",
        "prefix": "",
        "suffix": "",
    }
    assert bob["phones"] == [
        {"value": "123456", "types": ["cell", "pref"]},
        {"value": "123456", "types": ["work"]},
        {"value": "123456", "types": ["work", "fax"]},
    ]
    assert bob["emails"][1] == {"value": "Ñ" * 14, "types": ["pref"]}  # QP soft break joined
    assert bob["urls"] == ["www.company.com", "http://www.company.com"]
    assert cards[3]["note"] == "Ñ Ñ Ñ Ñ Ñ Ñ Ñ ÑÑ Ñ Ñ Ñ Ñ Ñ Ñ ÑÑ Ñ Ñ Ñ Ñ"
    # A blank line ends the first ORG's value; the first ORG is the one kept.
    assert cards[5]["org"] == ["Ñ" * 44]


def test_iphone_30_groups_escapes_and_photo_dropped(vault: Vault) -> None:
    import_file(vault, fixture("vcard/John_Doe_IPHONE.vcf"))
    (card,) = contacts(vault)
    assert card["full_name"] == "Mr. John Richter James Doe Sr."
    assert card["name"] == {
        "family": "Doe",
        "given": "John",
        "additional": "Richter,James",
        "prefix": "Mr.",
        "suffix": "Sr.",
    }
    assert card["org"] == ["IBM", "Accounting"]
    assert card["birthday"] == "2012-06-06"
    assert card["urls"] == ["http://www.ibm.com"]
    assert card["emails"] == [{"value": "john.doe@ibm.com", "types": ["internet", "pref"]}]
    assert len(card["phones"]) == 7
    assert card["addresses"][1] == {
        "types": ["work"],
        "po_box": "",
        "extended": "",
        "street": "Street4\nBuilding 6\nFloor 8",
        "locality": "New York",
        "region": "",
        "postal_code": "12345",
        "country": "USA",
    }
    assert "photo" not in card


def test_rfc6350_40_birthday_without_year_and_tel_uri(vault: Vault) -> None:
    import_file(vault, fixture("vcard/rfc6350-example.vcf"))
    (card,) = contacts(vault)
    assert card["birthday"] == "--02-03"
    assert card["phones"][0] == {
        "value": "tel:+1-418-656-9254;ext=102",
        "types": ["work", "voice"],
    }
    assert card["addresses"][0]["locality"] == "Quebec"


def test_uid_is_identity_and_rev_is_the_date() -> None:
    (rec,) = parse(
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:A\r\nUID:u-1\r\nREV:20240131T101010Z\r\nEND:VCARD\r\n"
    )
    assert (rec.identity, rec.occurred_at, rec.where) == ("u-1", "2024-01-31", "card 1 (line 1)")


def test_truncated_file_names_the_card() -> None:
    with pytest.raises(ImportFormatError) as exc:
        parse(b"BEGIN:VCARD\nVERSION:3.0\nFN:A\nEND:VCARD\nBEGIN:VCARD\nFN:B\n")
    assert exc.value.message == (
        "c.vcf card starting at line 5: no END:VCARD; the file looks truncated"
    )


def test_text_outside_a_card_is_refused() -> None:
    with pytest.raises(ImportFormatError) as exc:
        parse(b"hello\nBEGIN:VCARD\nFN:A\nEND:VCARD\n")
    assert exc.value.message == 'c.vcf line 1: "hello" is outside a BEGIN:VCARD card'


def test_unparseable_card_names_card_and_line() -> None:
    with pytest.raises(ImportFormatError) as exc:
        parse(b"BEGIN:VCARD\nFN:A\nEND:VCARD\nBEGIN:VCARD\nno colon here\nEND:VCARD\n")
    assert exc.value.message.startswith("c.vcf card 2 (line 4): not a readable vCard (")


def test_skip_bad_leaves_out_the_unreadable_card(vault: Vault, tmp_path: Path) -> None:
    path = tmp_path / "book.vcf"
    path.write_bytes(
        b"BEGIN:VCARD\nFN:A\nEND:VCARD\nBEGIN:VCARD\nno colon here\nEND:VCARD\n"
        b"BEGIN:VCARD\nFN:B\nEND:VCARD\n"
    )
    assert_skip_bad(
        vault,
        path,
        [
            "book.vcf card 2 (line 4): not a readable vCard (At line 3: Failed to parse line: "
            "no colon here)"
        ],
        new=2,
    )
    assert sorted(r.payload["full_name"] for r in vault.records()) == ["A", "B"]


def test_empty_card_stops_the_file_or_is_skipped(vault: Vault, tmp_path: Path) -> None:
    path = tmp_path / "book.vcf"
    path.write_bytes(b"BEGIN:VCARD\nFN:A\nEND:VCARD\nBEGIN:VCARD\nNOTE:x\nEND:VCARD\n")
    with pytest.raises(ImportFormatError) as exc:
        import_file(vault, path)
    assert exc.value.message == (
        "book.vcf card 2 (line 4): full_name: the card has no name, email, phone or organisation"
    )
    assert vault.status()["records"] == 0
    summary = import_file(vault, path, skip_bad=True)
    assert (summary.new, summary.rejected) == (1, 1)
    assert summary.rejected_rows == [exc.value.message]


def test_soft_break_before_end_and_many_folded_lines() -> None:
    (rec,) = parse(b"BEGIN:VCARD\nVERSION:2.1\nFN;ENCODING=QUOTED-PRINTABLE:A=\nEND:VCARD\n")
    assert rec.payload["full_name"] == "A"
    folded = b"".join(b" x\n" for _ in range(200_000))
    start = time.process_time()
    (rec,) = parse(b"BEGIN:VCARD\nVERSION:3.0\nFN:A\nNOTE:n\n" + folded + b"END:VCARD\n")
    assert rec.payload["note"] == "n" + "x" * 200_000
    assert time.process_time() - start < 5


def test_card_size_cap() -> None:
    folded = b"".join(b" " + b"x" * 1000 + b"\n" for _ in range(5000))
    with pytest.raises(ImportFormatError) as exc:
        parse(b"BEGIN:VCARD\nFN:A\nNOTE:n\n" + folded + b"END:VCARD\n")
    assert exc.value.message == "c.vcf card starting at line 1: more than 4,194,304 bytes"


def test_no_card_at_all() -> None:
    with pytest.raises(
        ImportFormatError, match=r"^c\.vcf: no BEGIN:VCARD \.\.\. END:VCARD card found$"
    ):
        parse(b"\r\n\r\n")


# -- fuzz: records or a clean ImportFormatError, never another exception ---------------------

SAMPLES = [
    fixture(n).read_bytes() for n in ("vcard/John_Doe_ANDROID.vcf", "vcard/rfc6350-example.vcf")
]


def _survives(data: bytes) -> None:
    try:
        for rec in parse(data):
            assert rec.category == "contacts"
            with contextlib.suppress(ValidationError):  # the schema may refuse, cleanly
                ContactSchema().load(rec.payload)
    except ImportFormatError:
        pass


@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data: bytes) -> None:
    _survives(b"BEGIN:VCARD\n" + data)


@given(st.sampled_from(SAMPLES), st.data())
def test_fuzz_mutated_fixtures(sample: bytes, data: st.DataObject) -> None:
    buf = bytearray(sample)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(buf) - 1))
        buf[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(buf)))
    _survives(bytes(buf[:cut]))
