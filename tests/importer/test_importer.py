"""The importer: repeats vs re-imports, validation, --skip-bad, plugins, and the fast
validator's agreement with the marshmallow schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError as MarshmallowError

from connectors.base import Connector, Record, Rejected, strict
from pds import registry
from pds.errors import ImportFormatError
from pds.importer import import_file
from pds.payloads import TransactionSchema, fast_validator
from pds.vault import Vault
from tests.factories import midata_file, transaction

COFFEE = ("02/03/2024", "VIS", "COSTA COFFEE", "-3.20", "")


def test_two_equal_coffees_are_two_records(vault: Vault, tmp_path: Path) -> None:
    path = midata_file(
        tmp_path / "s.csv", [COFFEE, COFFEE, ("01/03/2024", "VIS", "X", "-1.00", "")]
    )
    first = import_file(vault, path)
    assert (first.new, first.duplicate) == (3, 0)
    again = import_file(vault, path)
    assert (again.new, again.duplicate) == (0, 3)
    amounts = [r.payload["description"] for r in vault.records()]
    assert amounts == ["X", "COSTA COFFEE", "COSTA COFFEE"]


def test_a_later_statement_with_one_more_coffee_adds_one(vault: Vault, tmp_path: Path) -> None:
    import_file(vault, midata_file(tmp_path / "a.csv", [COFFEE]))
    later = import_file(vault, midata_file(tmp_path / "b.csv", [COFFEE, COFFEE]))
    assert (later.new, later.duplicate) == (1, 1)


class ListConnector(Connector):
    """A test plugin: yields records given to it, whatever the file says."""

    name = "listtest"
    title = "Test records"
    extensions = (".lst",)
    categories = ("transactions",)

    def __init__(self, records: list[Record]):
        self.records = records

    def detect(self, head: bytes, filename: str) -> bool:
        return filename.endswith(".lst")

    def parse(self, stream: BinaryIO, filename: str) -> Iterator[Record]:
        while stream.read(1 << 16):
            pass
        yield from self.records


@pytest.fixture
def plugin():
    def install(records: list[Record]) -> ListConnector:
        conn = ListConnector(records)
        registry.register(conn)
        return conn

    yield install
    registry.unregister("listtest")


def rec(payload: dict, where: str) -> Record:
    return Record("transactions", payload["date"], payload, where=where)


def lst(tmp_path: Path) -> Path:
    path = tmp_path / "x.lst"
    path.write_bytes(b"records")
    return path


def test_invalid_payload_stops_the_file(vault: Vault, tmp_path: Path, plugin) -> None:
    plugin([rec(transaction(), "row 1"), rec(transaction(amount="1,00"), "row 2")])
    with pytest.raises(ImportFormatError) as exc:
        import_file(vault, lst(tmp_path))
    assert exc.value.message == 'x.lst row 2: amount: "1,00" is not a decimal number like -12.30'
    assert exc.value.hint == "Fix or remove that row, or pass --skip-bad to leave it out."
    assert vault.status()["records"] == 0


def test_skip_bad_leaves_out_and_lists(vault: Vault, tmp_path: Path, plugin) -> None:
    bad_date = transaction(date="2024-02-30")
    plugin(
        [
            rec(transaction(), "row 1"),
            rec(bad_date, "row 2"),
            rec(transaction(amount="-1.00"), "row 3"),
        ]
    )
    summary = import_file(vault, lst(tmp_path), skip_bad=True)
    assert (summary.new, summary.rejected) == (2, 1)
    assert summary.rejected_rows == ['x.lst row 2: date: "2024-02-30" is not a real calendar date']


def test_rejected_row_stops_the_file_after_earlier_batches(
    vault: Vault, tmp_path: Path, plugin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pds.importer.BATCH", 2)  # rows 1-4 reach the vault before row 5
    good = [rec(transaction(amount=f"-{n}.00"), f"row {n}") for n in range(1, 5)]
    plugin([*good, Rejected("row 5", 'amount "1,0O" is not a number')])
    with pytest.raises(ImportFormatError) as exc:
        import_file(vault, lst(tmp_path))
    assert exc.value.message == 'x.lst row 5: amount "1,0O" is not a number'
    assert exc.value.hint == "Fix or remove that row, or pass --skip-bad to leave it out."
    assert (vault.status()["records"], vault.sources()) == (0, [])


def test_skip_bad_lists_rejected_and_invalid_rows_in_file_order(
    vault: Vault, tmp_path: Path, plugin
) -> None:
    plugin(
        [
            Rejected("line 2", 'date "31/02/2024" is not a date like 31/12/2024'),
            rec(transaction(), "line 3"),
            rec(transaction(date="2024-02-30"), "line 4"),
            Rejected("", "the last row is cut short"),
            rec(transaction(amount="-1.00"), "line 6"),
        ]
    )
    summary = import_file(vault, lst(tmp_path), skip_bad=True)
    assert (summary.new, summary.duplicate, summary.rejected) == (2, 0, 3)
    assert summary.rejected_rows == [
        'x.lst line 2: date "31/02/2024" is not a date like 31/12/2024',
        'x.lst line 4: date: "2024-02-30" is not a real calendar date',
        "x.lst: the last row is cut short",
    ]
    assert vault.status()["records"] == 2


def test_strict_raises_what_the_importer_would(tmp_path: Path) -> None:
    rows = [rec(transaction(), "row 1"), Rejected("row 2", "bad")]
    items = strict(iter(rows), "/some/dir/x.lst")
    assert next(items) == rows[0]
    with pytest.raises(ImportFormatError) as exc:
        next(items)
    assert (exc.value.message, exc.value.hint) == (
        "x.lst row 2: bad",
        "Fix or remove that row, or pass --skip-bad to leave it out.",
    )


def test_missing_optional_fields_are_normalized(vault: Vault, tmp_path: Path, plugin) -> None:
    payload = {"date": "2024-03-01", "amount": "2.00", "currency": "EUR", "description": "Z"}
    plugin([rec(payload, "row 1")])
    assert import_file(vault, lst(tmp_path)).new == 1
    assert next(vault.records()).payload == {
        **payload,
        "counterparty": None,
        "balance": None,
        "type": None,
        "account": None,
        "reference": None,
    }


def test_unknown_category_refused(vault: Vault, tmp_path: Path, plugin) -> None:
    plugin([Record("shoes", "2024-01-01", {}, where="row 1")])
    with pytest.raises(ImportFormatError, match=r"^x\.lst row 1: unknown category 'shoes'$"):
        import_file(vault, lst(tmp_path))


def test_plugin_listed_and_detected(plugin, tmp_path: Path) -> None:
    plugin([])
    assert "listtest" in [c.name for c in registry.all_connectors()]
    assert registry.detect(b"records", "x.lst").name == "listtest"


def test_directory_refused(vault: Vault, tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match=f"^{tmp_path}: not a regular file$"):
        import_file(vault, tmp_path)


def test_progress_reports_every_byte(vault: Vault, tmp_path: Path) -> None:
    path = midata_file(tmp_path / "s.csv", [COFFEE] * 50)
    seen: list[int] = []
    import_file(vault, path, progress=seen.append)
    assert sum(seen) == path.stat().st_size


# -- the fast validator is the schema, only quicker -------------------------------------------

SCHEMA = TransactionSchema()
FAST = fast_validator(SCHEMA)
text = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.integers(),
    st.sampled_from(
        ["2024-02-29", "2023-02-29", "-1.50", "1.5.0", "GBP", "gbp", "GBPX", "", "12,30"]
    ),
)
payloads = st.fixed_dictionaries(
    {},
    optional=dict.fromkeys(
        [
            "date",
            "amount",
            "currency",
            "description",
            "counterparty",
            "balance",
            "type",
            "account",
            "reference",
            "extra",
        ],
        text,
    ),
)


@given(payloads)
def test_fast_validator_never_accepts_what_marshmallow_would_change(payload: dict) -> None:
    if FAST(payload):
        assert SCHEMA.load(payload) == payload


@given(
    st.builds(
        transaction,
        date=st.dates().map(str),
        amount=st.decimals(places=2, allow_nan=False, allow_infinity=False).map(str),
        description=st.text(),
    )
)
def test_fast_validator_accepts_valid_normalized_payloads(payload: dict) -> None:
    try:
        loaded = SCHEMA.load(payload)
    except MarshmallowError:
        assert not FAST(payload)
        return
    assert loaded == payload
    assert FAST(payload)


def test_occurrence_memory_is_bounded_and_exact_for_sorted_files() -> None:
    from pds.importer import _Occurrences

    occ = _Occurrences(limit=10)
    seen = []
    for day in range(1, 31):
        date = f"2024-01-{day:02d}"
        for i in range(4):  # four distinct payloads a day, the first one twice
            seen.append(occ.nth(date, f"{date}-{i}".encode()))
        seen.append(occ.nth(date, f"{date}-0".encode()))
        assert occ.entries <= 10 + 4
    assert seen == [0, 0, 0, 0, 1] * 30
    # A date dropped long ago starts counting afresh: bounded memory's one cost.
    assert occ.nth("2024-01-01", b"2024-01-01-0") == 0


# -- folders: expanded into the files a connector recognises ----------------------------------


def test_folder_expands_to_recognised_files_in_name_order(tmp_path: Path) -> None:
    from pds.importer import expand_paths

    (tmp_path / "b").mkdir()
    midata_file(tmp_path / "b" / "s.csv", [COFFEE])
    midata_file(tmp_path / "a.csv", [COFFEE])
    (tmp_path / ".hidden.csv").write_bytes((tmp_path / "a.csv").read_bytes())
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "link.csv").symlink_to(tmp_path / "a.csv")
    assert list(expand_paths([tmp_path])) == [tmp_path / "a.csv", tmp_path / "b" / "s.csv"]


def test_folder_with_a_named_connector_keeps_only_its_files(tmp_path: Path) -> None:
    from pds.importer import expand_paths

    midata_file(tmp_path / "a.csv", [COFFEE])
    with pytest.raises(ImportFormatError) as exc:
        list(expand_paths([tmp_path], "ofx"))
    assert exc.value.message == f"{tmp_path}: no file in this folder is in a format pds reads"
    assert list(expand_paths([tmp_path], "midata")) == [tmp_path / "a.csv"]


def test_files_named_directly_pass_through_unchanged(tmp_path: Path) -> None:
    from pds.importer import expand_paths

    missing = tmp_path / "nope.csv"
    assert list(expand_paths([missing])) == [missing]


def test_a_folder_thousands_deep_is_walked_without_recursion(tmp_path: Path) -> None:
    from pds.importer import expand_paths

    folder = tmp_path
    for _ in range(1100):  # deeper than Python's recursion limit
        folder = folder / "d"
        folder.mkdir()
    try:
        midata_file(folder / "s.csv", [COFFEE])
        assert list(expand_paths([tmp_path])) == [folder / "s.csv"]
    finally:  # pytest's own clean-up (shutil.rmtree) recurses: remove it bottom up here
        (folder / "s.csv").unlink(missing_ok=True)
        while folder != tmp_path:
            folder.rmdir()
            folder = folder.parent


def test_a_folder_file_that_cannot_be_opened_is_a_clean_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pds.importer import expand_paths

    midata_file(tmp_path / "a.csv", [COFFEE])
    locked = midata_file(tmp_path / "locked.csv", [COFFEE])
    real_open = Path.open

    def open_(self: Path, *args, **kwargs):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_)  # the tests run as root, which reads any file
    with pytest.raises(ImportFormatError) as exc:
        list(expand_paths([tmp_path]))
    assert exc.value.message == f"{locked}: cannot be read (Permission denied)"
    assert exc.value.hint == "Check that the file or folder is readable by you."
