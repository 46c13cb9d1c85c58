"""The one charset rule (connectors/charset.py) in every text connector: a UTF-8 file with
one bad byte is never read as Windows-1252 (which turns every good ``é`` into ``Ã©``); the
bad byte is refused naming its line, column and file offset, and ``--skip-bad`` leaves out
just the row (card, transaction, event) it is in. A file with no valid multi-byte UTF-8 is
read as Windows-1252 (Latin-1) as before; a charset the format declares is used."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from connectors.charset import FileCharset, has_multibyte, stream_has_multibyte
from connectors.vcard import VcardConnector
from pds.errors import ImportFormatError
from pds.importer import ImportSummary, import_file
from pds.vault import Vault

ROW_HINT = "Fix or remove that row, or pass --skip-bad to leave it out."
ELSEWHERE = "is not valid UTF-8, and the file is UTF-8 elsewhere"


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDS_HOME", str(tmp_path / "home"))  # no csv-profiles of one's own


def run(vault: Vault, path: Path, data: bytes, skip_bad: bool = False) -> ImportSummary:
    path.write_bytes(data)
    return import_file(vault, path, skip_bad=skip_bad)


def refused(vault: Vault, path: Path, data: bytes, skip_bad: bool = False) -> ImportFormatError:
    with pytest.raises(ImportFormatError) as exc:
        run(vault, path, data, skip_bad)
    assert vault.sources() == []
    return exc.value


def values(vault: Vault, category: str, key: str) -> list[str]:
    return sorted(r.payload[key] for r in vault.records(category))


# -- midata ------------------------------------------------------------------------------------

MIDATA_HEAD = b"Date,Type,Merchant/Description,Debit/Credit,Balance\n"


def midata_row(day: int, text: bytes) -> bytes:
    return b"%02d/03/2014,VIS," % day + text + b",-5.00,260.00\n"


BAD_FIRST = (
    MIDATA_HEAD + midata_row(4, b"Boots the Ch\xe9mist") + midata_row(5, b"Caf\xc3\xa9 Nero")
)


def test_midata_bad_byte_before_any_utf8_is_refused(vault: Vault, tmp_path: Path) -> None:
    exc = refused(vault, tmp_path / "m.csv", BAD_FIRST)
    assert exc.message == f"m.csv line 2: byte 0xE9 at column 28 (file offset 79) {ELSEWHERE}"
    assert exc.hint == ROW_HINT


def test_midata_skip_bad_leaves_out_the_row_and_keeps_the_e(vault: Vault, tmp_path) -> None:
    summary = run(vault, tmp_path / "m.csv", BAD_FIRST, skip_bad=True)
    assert (summary.new, summary.rejected) == (1, 1)
    assert summary.rejected_rows == [
        f"m.csv line 2: byte 0xE9 at column 28 (file offset 79) {ELSEWHERE}"
    ]
    assert values(vault, "transactions", "description") == ["Café Nero"]


def test_midata_bad_bytes_after_utf8_the_second_and_the_hundredth(vault, tmp_path) -> None:
    rows = [midata_row(1 + i % 28, b"Caf\xc3\xa9 %d" % i) for i in range(120)]
    rows[1] = midata_row(6, b"Boots \xe9")  # line 3
    rows[98] = midata_row(7, b"Boots \xff\xfe")  # line 100
    data = MIDATA_HEAD + b"".join(rows)
    exc = refused(vault, tmp_path / "m.csv", data)
    assert exc.message == f"m.csv line 3: byte 0xE9 at column 22 (file offset 109) {ELSEWHERE}"
    summary = run(vault, tmp_path / "m.csv", data, skip_bad=True)
    offset = len(MIDATA_HEAD) + sum(len(r) for r in rows[:98]) + 21
    assert summary.rejected_rows == [
        f"m.csv line 3: byte 0xE9 at column 22 (file offset 109) {ELSEWHERE}",
        f"m.csv line 100: byte 0xFF at column 22 (file offset {offset:,}) {ELSEWHERE}",
    ]
    assert summary.new == 118
    assert all(v.startswith("Café ") for v in values(vault, "transactions", "description"))


def test_midata_latin1_without_utf8_is_read_as_latin1(vault: Vault, tmp_path: Path) -> None:
    data = MIDATA_HEAD + midata_row(4, b"Boots the Ch\xe9mist") + midata_row(5, b"\xa3 Shop")
    assert run(vault, tmp_path / "m.csv", data).new == 2
    assert values(vault, "transactions", "description") == ["Boots the Chémist", "£ Shop"]


# -- bank CSV ----------------------------------------------------------------------------------

SCHWAB = (
    b'"Date","Status","Type","CheckNumber","Description","Withdrawal","Deposit","RunningBalance"\n'
)


def schwab_row(text: bytes, amount: bytes = b"20.00") -> bytes:
    return b'"08/17/2022","Posted","DEPOSIT","","' + text + b'","","$' + amount + b'","$878.47"\n'


def test_bankcsv_bad_byte_refused_or_skipped(vault: Vault, tmp_path: Path) -> None:
    data = SCHWAB + schwab_row(b"Caf\xe9") + schwab_row(b"Cr\xc3\xa8me", b"21.00")
    message = f"s.csv line 2: byte 0xE9 at column 40 (file offset 130) {ELSEWHERE}"
    exc = refused(vault, tmp_path / "s.csv", data)
    assert (exc.message, exc.hint) == (message, ROW_HINT)
    summary = run(vault, tmp_path / "s.csv", data, skip_bad=True)
    assert (summary.new, summary.rejected, summary.rejected_rows) == (1, 1, [message])
    assert values(vault, "transactions", "description") == ["Crème"]


def test_bankcsv_byte_order_mark_declares_utf8(vault: Vault, tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + SCHWAB + schwab_row(b"Caf\xe9")
    exc = refused(vault, tmp_path / "s.csv", data)
    assert exc.message == (
        "s.csv line 2: byte 0xE9 at column 40 (file offset 133) is not valid UTF-8, and the "
        "file starts with a UTF-8 byte order mark"
    )


def test_bankcsv_latin1_is_read_as_latin1(vault: Vault, tmp_path: Path) -> None:
    data = SCHWAB + schwab_row(b"Caf\xe9") + schwab_row(b"Cr\xe8me", b"21.00")
    assert run(vault, tmp_path / "s.csv", data).new == 2
    assert values(vault, "transactions", "description") == ["Café", "Crème"]


def test_bad_byte_before_the_header_stops_the_file(vault: Vault, tmp_path: Path) -> None:
    data = b"Account Number:,Caf\xe9\n" + MIDATA_HEAD + midata_row(5, b"Cr\xc3\xa8me")
    exc = refused(vault, tmp_path / "m.csv", data, skip_bad=True)
    assert exc.message == f"m.csv line 1: byte 0xE9 at column 20 (file offset 19) {ELSEWHERE}"
    assert exc.hint == "Download the statement again from your bank as a midata (CSV) file."


# -- vCard -------------------------------------------------------------------------------------


def card(fn: bytes, version: bytes = b"3.0") -> bytes:
    return b"BEGIN:VCARD\r\nVERSION:" + version + b"\r\nFN:" + fn + b"\r\nEND:VCARD\r\n"


def test_vcard_bad_byte_refused_or_card_skipped(vault: Vault, tmp_path: Path) -> None:
    data = card(b"Bad P\xe9rson") + card(b"Ren\xc3\xa9e") + card(b"Zo\xc3\xab")
    message = f"v.vcf card 1 line 3: byte 0xE9 at column 9 (file offset 34) {ELSEWHERE}"
    exc = refused(vault, tmp_path / "v.vcf", data)
    assert (exc.message, exc.hint) == (message, ROW_HINT)
    summary = run(vault, tmp_path / "v.vcf", data, skip_bad=True)
    assert (summary.new, summary.rejected_rows) == (2, [message])
    assert values(vault, "contacts", "full_name") == ["Renée", "Zoë"]


def test_vcard_latin1_and_a_declared_charset(vault: Vault, tmp_path: Path) -> None:
    latin1 = card(b"Ren\xe9e") + card(b"Zo\xeb")
    assert run(vault, tmp_path / "a.vcf", latin1).new == 2
    assert values(vault, "contacts", "full_name") == ["Renée", "Zoë"]
    # A UTF-8 book whose 2.1 card declares its value ISO-8859-1: read as declared.
    declared = card(b"Ana \xc3\x8f") + card(b"x", b"2.1").replace(
        b"FN:x", b"FN;CHARSET=ISO-8859-1:J\xfcrgen"
    )
    assert run(vault, tmp_path / "b.vcf", declared).new == 2
    assert "Jürgen" in values(vault, "contacts", "full_name")


def _takeout(vcf: bytes) -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as z:
        z.writestr("Takeout/Contacts/All Contacts/All Contacts.vcf", vcf)
    return raw.getvalue()


def test_vcard_in_a_zip_cannot_look_ahead(vault: Vault, tmp_path: Path) -> None:
    entry = "Takeout/Contacts/All Contacts/"
    # A bad byte before any UTF-8, in a stream that cannot be read twice: the file is
    # refused when UTF-8 turns up, naming the first bad byte, even with --skip-bad.
    data = _takeout(card(b"Bad P\xe9rson") + card(b"Ren\xc3\xa9e"))
    exc = refused(vault, tmp_path / "takeout-1.zip", data, skip_bad=True)
    assert exc.message == (
        f"takeout-1.zip {entry}All Contacts.vcf line 3: byte 0xE9 at column 9 (file offset "
        f"34) {ELSEWHERE}"
    )
    # UTF-8 first: the bad card is a rejected row.
    data = _takeout(card(b"Ren\xc3\xa9e") + card(b"Bad P\xe9rson"))
    summary = run(vault, tmp_path / "takeout-2.zip", data, skip_bad=True)
    assert summary.rejected_rows == [
        f"takeout-2.zip {entry}All Contacts.vcf card 2 line 7: byte 0xE9 at column 9 "
        f"(file offset 82) {ELSEWHERE}"
    ]
    # Latin-1 throughout reads as Latin-1.
    assert run(vault, tmp_path / "takeout-3.zip", _takeout(card(b"Zo\xeb"))).new == 1
    assert values(vault, "contacts", "full_name") == ["Renée", "Zoë"]


# -- MT940 -------------------------------------------------------------------------------------

MT940 = b":20:REF\n:25:NL81ASNB9999999999\n:60F:C200101EUR444,29\n"
LINE61 = b":61:2001010101D65,00NOVBNONREF\n"


def test_mt940_bad_byte_refused_or_transaction_skipped(vault: Vault, tmp_path: Path) -> None:
    data = MT940 + LINE61 + b":86:Caf\xe9\n" + LINE61 + b":86:Cr\xc3\xa8me\n-\n"
    message = f"s.sta line 5: byte 0xE9 at column 8 (file offset 91) {ELSEWHERE}"
    exc = refused(vault, tmp_path / "s.sta", data)
    assert (exc.message, exc.hint) == (message, ROW_HINT)
    summary = run(vault, tmp_path / "s.sta", data, skip_bad=True)
    assert (summary.rejected_rows, summary.new) == ([message], 2)  # a balance and Crème
    assert values(vault, "transactions", "description") == ["Crème"]


def test_mt940_latin1_is_read_as_latin1(vault: Vault, tmp_path: Path) -> None:
    data = MT940 + LINE61 + b":86:Caf\xe9\n-\n"
    assert run(vault, tmp_path / "s.sta", data).new == 2
    assert values(vault, "transactions", "description") == ["Café"]


# -- iCalendar ---------------------------------------------------------------------------------


def calendar(*summaries: bytes) -> bytes:
    events = b"".join(
        b"BEGIN:VEVENT\r\nUID:e%d\r\nDTSTART:2024010%dT100000Z\r\nSUMMARY:%s\r\nEND:VEVENT\r\n"
        % (i, i + 1, s)
        for i, s in enumerate(summaries)
    )
    return (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n" + events + b"END:VCALENDAR\r\n"
    )


def test_ical_bad_byte_refused_or_event_skipped(vault: Vault, tmp_path: Path) -> None:
    data = calendar(b"Caf\xe9", b"Cr\xc3\xa8me", b"Zo\xc3\xab")
    message = f"c.ics VEVENT #1 line 7: byte 0xE9 at column 12 (file offset 109) {ELSEWHERE}"
    exc = refused(vault, tmp_path / "c.ics", data)
    assert (exc.message, exc.hint) == (message, ROW_HINT)
    summary = run(vault, tmp_path / "c.ics", data, skip_bad=True)
    assert (summary.new, summary.rejected_rows) == (2, [message])
    assert values(vault, "events", "summary") == ["Crème", "Zoë"]


def test_ical_bad_byte_outside_an_event_stops_the_file(vault: Vault, tmp_path: Path) -> None:
    data = calendar(b"Cr\xc3\xa8me").replace(b"PRODID:-//t//", b"PRODID:-//t\xe9//")
    exc = refused(vault, tmp_path / "c.ics", data, skip_bad=True)
    assert exc.message == f"c.ics line 3: byte 0xE9 at column 12 (file offset 41) {ELSEWHERE}"


def test_ical_latin1_is_read_as_latin1(vault: Vault, tmp_path: Path) -> None:
    assert run(vault, tmp_path / "c.ics", calendar(b"Caf\xe9")).new == 1
    assert values(vault, "events", "summary") == ["Café"]


# -- OFX (read whole; a bad byte stops the file) -----------------------------------------------


def ofx(memo1: bytes, memo2: bytes, header: bytes = b"") -> bytes:
    def txn(fitid: int, memo: bytes) -> bytes:
        return (
            b"<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20240102<TRNAMT>-5.00<FITID>%d<NAME>Shop"
            b"<MEMO>%s</STMTTRN>\n" % (fitid, memo)
        )

    return (
        b"OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\n" + header + b"\n<OFX><BANKMSGSRSV1>"
        b"<STMTTRNRS><STMTRS><CURDEF>EUR<BANKACCTFROM><ACCTID>1</BANKACCTFROM><BANKTRANLIST>\n"
        + txn(1, memo1)
        + txn(2, memo2)
        + b"</BANKTRANLIST></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>\n"
    )


def test_ofx_bad_byte_refused_even_with_skip_bad(vault: Vault, tmp_path: Path) -> None:
    data = ofx(b"Caf\xe9", b"Cr\xc3\xa8me")
    exc = refused(vault, tmp_path / "b.ofx", data, skip_bad=True)
    assert exc.message == f"b.ofx line 6: byte 0xE9 at column 82 (file offset 223) {ELSEWHERE}"
    assert exc.hint == "Fix or remove that byte, or export the file again as UTF-8."


def test_ofx_latin1_and_declared_charsets(vault: Vault, tmp_path: Path) -> None:
    assert run(vault, tmp_path / "a.ofx", ofx(b"Caf\xe9", b"Cr\xe8me")).new == 2
    assert values(vault, "transactions", "description") == ["Café", "Crème"]
    # CHARSET:1252 declared: used for a file that is not UTF-8, even with "Ã©"-like pairs.
    data = ofx(b"Caf\xe9", b"\xc3\xa9t\xe9", b"CHARSET:1252\n").replace(b"<ACCTID>1", b"<ACCTID>2")
    assert run(vault, tmp_path / "b.ofx", data).new == 2
    assert "Ã©té" in values(vault, "transactions", "description")


# -- the rule itself ---------------------------------------------------------------------------


def test_multibyte_detection() -> None:
    assert has_multibyte("é".encode())
    assert not has_multibyte(b"plain ascii")
    assert not has_multibyte(b"Caf\xe9 \xa3 \xff")  # Latin-1 only
    assert not has_multibyte(b"\xed\xa0\x80")  # an encoded surrogate is not UTF-8
    assert has_multibyte(b"Caf\xe9 and Caf\xc3\xa9")
    stream = io.BytesIO(b"x" * 2_000_000 + "é".encode())
    stream.seek(10)
    assert stream_has_multibyte(stream) is True
    assert stream.tell() == 10  # read ahead without moving


def test_second_and_hundredth_files_decide_afresh() -> None:
    for n in range(100):
        data = b"a\n" * n + (b"caf\xe9\n" if n % 2 else "café\n".encode())
        charset = FileCharset(io.BytesIO(data))
        texts = [charset.decode(line, i, 0) for i, line in enumerate(data.splitlines(True), 1)]
        assert texts[-1] == "café\n"


def test_connector_reads_each_card_once(tmp_path: Path) -> None:
    data = card(b"Ren\xc3\xa9e") * 3
    records = list(VcardConnector().parse(io.BytesIO(data), "v.vcf"))
    assert [r.payload["full_name"] for r in records] == ["Renée"] * 3
