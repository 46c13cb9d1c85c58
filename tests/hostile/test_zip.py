"""Hostile zips: unsafe entry names, a zip bomb, 100,000 entries, lying headers — each refused
quickly, with a clear message, in bounded memory, and the vault left as it was."""

from __future__ import annotations

import io
import random
import struct
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from connectors.archive import SafeZip, first_entry_name, unsafe_reason
from pds.errors import ImportFormatError
from pds.importer import import_file
from pds.vault import Vault

HINT = "Make the archive again from the original export, or import its files one by one."


def make_zip(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", method) as z:
        for name, data in entries.items():
            z.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return raw.getvalue()


def read_all(data: bytes, **limits: int) -> None:
    with SafeZip(io.BytesIO(data), "x.zip", **limits) as z:
        for name in z.names():
            with z.open(name) as fh:
                while fh.read(1 << 16):
                    pass


def refused(data: bytes, **limits: int) -> ImportFormatError:
    with pytest.raises(ImportFormatError) as exc:
        read_all(data, **limits)
    return exc.value


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../../etc/passwd", 'a ".." component'),
        ("Takeout/../../x", 'a ".." component'),
        ("/etc/passwd", "an absolute path"),
        ("..\\..\\evil.exe", "a backslash"),
        ("C:/Windows/evil.exe", "a drive letter"),
        ("Takeout/a\x01b", "a control character"),
    ],
)
def test_zip_slip_names_refused_before_anything_is_read(name: str, reason: str) -> None:
    data = make_zip({"Takeout/ok.json": b"[]", name: b"x"})
    exc = refused(data)
    shown = name.replace("\x01", "\\x01")
    assert exc.message == (
        f'x.zip: entry "{shown}" has {reason} in its name; '
        "pds refuses archives with unsafe entry names"
    )
    assert exc.hint == HINT


def test_nul_in_a_name_is_refused() -> None:
    data = make_zip({"Takeout/evil.json": b"[]"})
    # Patch the name in both headers to "Takeout/evil\0json" (zipfile would cut at the NUL).
    data = data.replace(b"Takeout/evil.json", b"Takeout/evil\x00json")
    exc = refused(data)
    assert exc.message == (
        'x.zip: entry "Takeout/evil\\x00json" has a control character in its name; '
        "pds refuses archives with unsafe entry names"
    )


def test_safe_names_pass() -> None:
    assert unsafe_reason("Takeout/My Activity/Search/My Activity.json") is None
    assert unsafe_reason("a..b/c..") is None


def test_zip_bomb_refused_quickly_in_bounded_memory() -> None:
    data = make_zip({"Takeout/Location History/Records.json": b"\0" * (200 << 20)})
    assert 200 * 2**20 / len(data) > 1000  # a real >= 1000:1 bomb
    tracemalloc.start()
    start = time.process_time()
    exc = refused(data)
    seconds = time.process_time() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert exc.message == (
        "x.zip Takeout/Location History/Records.json: decompresses to more than 100 times its "
        "compressed size; this looks like a zip bomb and pds stops reading"
    )
    assert seconds < 1.0
    assert peak < 8 * 2**20


def test_bomb_of_many_small_entries_caught_by_the_archive_ratio() -> None:
    entries = {f"Takeout/{i}.json": b" " * (512 << 10) for i in range(40)}  # 20 MiB of spaces
    exc = refused(make_zip(entries))
    assert exc.message.endswith(
        "decompresses to more than 100 times its compressed size; "
        "this looks like a zip bomb and pds stops reading"
    )


def test_total_bytes_cap_counts_what_is_decompressed() -> None:
    data = make_zip({"a.bin": b"ab" * 3000, "b.bin": b"cd" * 3000}, zipfile.ZIP_STORED)
    exc = refused(data, max_total_bytes=10_000)
    assert exc.message == (
        "x.zip: more than 10,000 bytes once decompressed (at b.bin); pds stops there"
    )


def test_lying_header_does_not_buy_more_bytes() -> None:
    # The headers claim 10 bytes; the data is 100 KB. Only what is really produced counts,
    # and zipfile's CRC check refuses the entry: either way, a clean error.
    data = bytearray(make_zip({"a.txt": b"x" * 100_000}, zipfile.ZIP_STORED))
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(sig)
        struct.pack_into("<I", data, at + offset, 10)
    exc = refused(bytes(data))
    assert exc.message.startswith("x.zip a.txt: the entry cannot be read (")


@pytest.fixture(scope="module")
def many_entries(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("zips") / "many.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for i in range(100_000):
            z.writestr(f"Takeout/{i}", b"")
    return path.read_bytes()


def _refused_in_constant_memory(data: bytes) -> ImportFormatError:
    tracemalloc.start()
    start = time.process_time()
    with pytest.raises(ImportFormatError) as exc:
        SafeZip(io.BytesIO(data), "many.zip")
    seconds = time.process_time() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seconds < 2.0  # measured 0.04 s without tracemalloc
    assert peak < 1 * 2**20  # zipfile never parsed the central directory
    return exc.value


def test_hundred_thousand_entries_refused_from_the_end_record(many_entries: bytes) -> None:
    exc = _refused_in_constant_memory(many_entries)
    assert exc.message == "many.zip: the archive has more than 50,000 entries, the most pds reads"
    assert exc.hint == HINT


def test_end_records_that_lie_about_the_count_do_not_help(many_entries: bytes) -> None:
    data = bytearray(many_entries)
    zip64 = data.rfind(b"PK\x06\x06")
    struct.pack_into("<QQ", data, zip64 + 24, 1, 1)
    eocd = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, eocd + 8, 1, 1)
    exc = _refused_in_constant_memory(bytes(data))
    assert exc.message == "many.zip: the archive has more than 50,000 entries, the most pds reads"


def test_import_of_a_bomb_leaves_the_vault_as_it_was(vault: Vault, tmp_path: Path) -> None:
    path = tmp_path / "takeout-1.zip"
    good = (
        b'{"header":"Maps","title":"t","time":"2019-05-30T05:17:16.626Z","products":["Maps"]},'
    ) * 10
    path.write_bytes(
        make_zip(
            {
                "Takeout/My Activity/Maps/My Activity.json": b"[" + good[:-1] + b"]",
                "Takeout/My Activity/Search/My Activity.json": b"[" + b" " * (50 << 20) + b"]",
            }
        )
    )
    with pytest.raises(ImportFormatError) as exc:
        import_file(vault, path)
    assert exc.value.message == (
        "takeout-1.zip Takeout/My Activity/Search/My Activity.json: decompresses to more than "
        "100 times its compressed size; this looks like a zip bomb and pds stops reading"
    )
    assert vault.status()["records"] == 0
    assert vault.sources() == []


def test_not_a_zip_and_truncated_zip() -> None:
    exc = refused(b"PK\x03\x04" + b"\0" * 100)
    assert exc.message == ("x.zip: not a readable zip archive (no end-of-central-directory record)")
    whole = make_zip({"a": b"hello" * 100})
    exc = refused(whole[: len(whole) // 2])
    assert exc.message.startswith("x.zip: not a readable zip archive (")


def test_encrypted_entry_refused() -> None:
    data = bytearray(make_zip({"a.txt": b"hi"}, zipfile.ZIP_STORED))
    for sig, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(sig)
        flags = struct.unpack_from("<H", data, at + offset)[0]
        struct.pack_into("<H", data, at + offset, flags | 1)
    exc = refused(bytes(data))
    assert exc.message == "x.zip a.txt: the entry is encrypted"


def test_duplicate_names_refused() -> None:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as z:
        z.writestr("a.json", b"1")
        with pytest.warns(UserWarning, match="Duplicate name"):
            z.writestr("a.json", b"2")
    exc = refused(raw.getvalue())
    assert exc.message == 'x.zip: entry "a.json" appears twice'


def test_names_leave_out_directories_and_never_touch_disk(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = make_zip({"Takeout/": b"", "Takeout/a.json": b"[]"})
    with SafeZip(io.BytesIO(data), "/some/where/x.zip") as z:
        assert z.names() == ["Takeout/a.json"]
        assert z.open("Takeout/a.json").read() == b"[]"
        with pytest.raises(ImportFormatError, match=r'^x\.zip: no entry "b"$'):
            z.open("b")
    assert list(tmp_path.iterdir()) == []


def test_first_entry_name_from_the_head() -> None:
    data = make_zip({"apple_health_export/export.xml": b"<x/>"})
    assert first_entry_name(data[:4096]) == "apple_health_export/export.xml"
    assert first_entry_name(b"PK\x03\x04short") is None
    assert first_entry_name(b"not a zip") is None


_LOCATION = (
    b'{"timestampMs":"1500000000000","latitudeE7":376955289,"longitudeE7":-1224186700,'
    b'"accuracy":20,"source":"WIFI"},'
)


@pytest.fixture(scope="module")
def takeout_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A well-formed Takeout zip of about 1 MB: Location History JSON, every element valid,
    that inflates to 300 MiB (0.7 s to make)."""
    path = tmp_path_factory.mktemp("bomb") / "takeout-bomb.zip"
    chunk = _LOCATION * ((1 << 20) // len(_LOCATION) + 1)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        entry = "Takeout/Location History/Records.json"
        with z.open(entry, "w", force_zip64=True) as out:
            out.write(b'{"locations":[')
            for _ in range(300):
                out.write(chunk)
            out.write(_LOCATION[:-1] + b"]}")
    return path


def _wal(vault: Vault) -> int:
    wal = vault.settings.db_path.with_name(vault.settings.db_path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_well_formed_takeout_bomb_is_refused_before_anything_is_written(
    vault: Vault, takeout_bomb: Path
) -> None:
    assert takeout_bomb.stat().st_size < 2 << 20
    before = (vault.status()["records"], vault.sources(), _wal(vault))
    entries = vault.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    for _ in range(2):  # the first time and the next
        start = time.process_time()
        with pytest.raises(ImportFormatError) as exc:
            import_file(vault, takeout_bomb)
        seconds = time.process_time() - start
        assert exc.value.message == (
            "takeout-bomb.zip Takeout/Location History/Records.json: decompresses to more than "
            "100 times its compressed size; this looks like a zip bomb and pds stops reading"
        )
        assert seconds < 1.0  # measured 0.01 s; it was minutes, reading up to the cap
        assert (vault.status()["records"], vault.sources(), _wal(vault)) == before
        assert vault.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == entries


def test_a_bomb_after_a_good_entry_is_refused_before_the_first_record() -> None:
    from connectors.takeout import TakeoutConnector

    rng = random.Random(7)
    titles = ",".join(
        f'{{"header":"Search","title":"{rng.randbytes(48).hex()}",'
        f'"time":"2019-05-30T05:17:16.626Z"}}'
        for _ in range(20_000)
    ).encode()
    data = make_zip(
        {
            "Takeout/My Activity/Search/My Activity.json": b"[" + titles + b"]",
            "Takeout/My Activity/Maps/My Activity.json": b"[" + b" " * (100 << 20) + b"]",
        }
    )
    assert 100 * 2**20 / len(data) < 100  # the archive as a whole is within the ratio
    records = TakeoutConnector().parse(io.BytesIO(data), "takeout-2.zip")
    start = time.process_time()
    with pytest.raises(ImportFormatError) as exc:
        next(records)  # not one record of the good entry comes out first
    assert time.process_time() - start < 0.5
    assert exc.value.message == (
        "takeout-2.zip Takeout/My Activity/Maps/My Activity.json: decompresses to more than "
        "100 times its compressed size; this looks like a zip bomb and pds stops reading"
    )


def test_declared_total_refused_when_the_archive_is_opened() -> None:
    entries = {f"Takeout/{i}.bin": b" " * (512 << 10) for i in range(40)}
    with pytest.raises(ImportFormatError) as exc:
        SafeZip(io.BytesIO(make_zip(entries)), "x.zip")  # nothing read yet
    assert exc.value.message == (
        "x.zip Takeout/4.bin: decompresses to more than 100 times its compressed size; "
        "this looks like a zip bomb and pds stops reading"
    )
