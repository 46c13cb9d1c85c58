"""Hostile XML against every XML connector: entity bombs, XXE, external DTDs, and a listener
on 127.0.0.1 that must never see a connection. Each is refused quickly, in bounded memory,
with a message that names the file and the line."""

from __future__ import annotations

import io
import select
import socket
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from connectors.xmlsafe import iterparse, local
from pds import registry
from pds.cli import cli
from pds.errors import ImportFormatError

XML_CONNECTORS = ("greenbutton", "applehealth", "camt053")
ROOTS = {
    "greenbutton": '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:espi="http://naesb.org/espi">'
    "&{ref};</feed>",
    "applehealth": '<HealthData locale="en_GB">&{ref};</HealthData>',
    "camt053": '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">&{ref};</Document>',
}
NAMES = {"greenbutton": "feed", "applehealth": "HealthData", "camt053": "Document"}
DOCTYPE_REFUSED = "document type declarations (<!DOCTYPE>) are refused in this format"
ENTITY_REFUSED = "entity declarations are refused (<!ENTITY {}>); pds never expands XML entities"
MAX_SECONDS = 2.0
MAX_PEAK_BYTES = 5_000_000


def billion_laughs(connector: str) -> bytes:
    levels = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)
    ]
    return _document(connector, "\n".join(levels), "lol9")


def quadratic_blowup(connector: str) -> bytes:
    """One 100 kB entity referenced 20,000 times: 2 GB if it were expanded."""
    declaration = f'<!ENTITY big "{"x" * 100_000}">'
    return _document(connector, declaration, "big;&big" * 10_000)


def xxe_file(connector: str) -> bytes:
    return _document(connector, '<!ENTITY xxe SYSTEM "file:///etc/passwd">', "xxe")


def xxe_url(connector: str, port: int) -> bytes:
    return _document(connector, f'<!ENTITY xxe SYSTEM "http://127.0.0.1:{port}/xxe">', "xxe")


def parameter_entity(connector: str, port: int) -> bytes:
    declaration = f'<!ENTITY % remote SYSTEM "http://127.0.0.1:{port}/p.dtd">\n%remote;'
    return _document(connector, declaration, "amp")


def external_dtd(connector: str, port: int) -> bytes:
    root = ROOTS[connector].replace("&{ref};", "")
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE {NAMES[connector]} SYSTEM '
        f'"http://127.0.0.1:{port}/x.dtd">\n{root}\n'
    ).encode()


def _document(connector: str, declarations: str, ref: str) -> bytes:
    root = ROOTS[connector].replace("{ref}", ref)
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE {NAMES[connector]} [\n{declarations}\n]>\n{root}\n'
    ).encode()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP socket listening on 127.0.0.1 that no parser may ever connect to."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield sock
    finally:
        sock.close()


def assert_no_connection(sock: socket.socket) -> None:
    readable, _, _ = select.select([sock], [], [], 0.3)
    assert readable == [], "the parser connected to the 127.0.0.1 listener"


def refuse(connector: str, data: bytes, filename: str = "hostile.xml") -> str:
    """Parse through the connector; return the refusal after checking time and memory."""
    tracemalloc.start()
    started = time.process_time()
    try:
        with pytest.raises(ImportFormatError) as caught:
            list(registry.get(connector).parse(io.BytesIO(data), filename))
        elapsed = time.process_time() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < MAX_SECONDS
    assert peak < MAX_PEAK_BYTES + len(data)
    return caught.value.message


def expected(connector: str, line: int, entity: str) -> str:
    if connector == "applehealth":  # the one format whose internal DTD is allowed
        return f"hostile.xml line {line}: " + ENTITY_REFUSED.format(entity)
    return f"hostile.xml line 2: {DOCTYPE_REFUSED}"


@pytest.mark.parametrize("connector", XML_CONNECTORS)
def test_billion_laughs(connector):
    assert refuse(connector, billion_laughs(connector)) == expected(connector, 3, "lol0")


@pytest.mark.parametrize("connector", XML_CONNECTORS)
def test_quadratic_blowup(connector):
    assert refuse(connector, quadratic_blowup(connector)) == expected(connector, 3, "big")


@pytest.mark.parametrize("connector", XML_CONNECTORS)
def test_xxe_to_a_local_file(connector):
    assert refuse(connector, xxe_file(connector)) == expected(connector, 3, "xxe")


@pytest.mark.parametrize("connector", XML_CONNECTORS)
def test_xxe_to_a_listener_never_connects(connector, listener):
    port = listener.getsockname()[1]
    assert refuse(connector, xxe_url(connector, port)) == expected(connector, 3, "xxe")
    assert refuse(connector, parameter_entity(connector, port)) == expected(connector, 3, "remote")
    assert_no_connection(listener)


@pytest.mark.parametrize("connector", XML_CONNECTORS)
def test_external_dtd_is_never_fetched(connector, listener):
    port = listener.getsockname()[1]
    message = refuse(connector, external_dtd(connector, port))
    if connector == "applehealth":
        assert message == (
            f'hostile.xml line 2: an external DTD ("http://127.0.0.1:{port}/x.dtd") is refused; '
            "pds never fetches anything a file points to"
        )
    else:
        assert message == f"hostile.xml line 2: {DOCTYPE_REFUSED}"
    assert_no_connection(listener)


def test_undeclared_entity_reference():
    data = b'<?xml version="1.0"?>\n<HealthData>\n&xxe;</HealthData>'
    assert (
        refuse("applehealth", data) == "hostile.xml line 3: not well-formed XML (undefined entity)"
    )


def test_cli_import_refuses_billion_laughs(runner: CliRunner, initialised: Path, tmp_path: Path):
    path = tmp_path / "export.xml"
    path.write_bytes(billion_laughs("applehealth"))
    result = runner.invoke(cli, ["import", str(path)])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        "Error: export.xml line 3: " + ENTITY_REFUSED.format("lol0")
    )
    assert "Traceback" not in result.output
    status = runner.invoke(cli, ["status", "--json"])
    assert '"records": 0' in status.stdout


# -- xmlsafe itself ------------------------------------------------------------------------------


def test_internal_dtd_without_entities_is_allowed_only_when_asked():
    data = b'<!DOCTYPE a [\n<!ATTLIST a x CDATA #IMPLIED>\n]>\n<a x="1"><b/></a>'
    events = iterparse(io.BytesIO(data), "a.xml", ("start", "end"), allow_dtd=True)
    assert [(event, element.tag, events.line) for event, element in events] == [
        ("start", "a", 4),
        ("start", "b", 4),
        ("end", "b", 4),
        ("end", "a", 4),
    ]
    with pytest.raises(ImportFormatError) as caught:
        list(iterparse(io.BytesIO(data), "a.xml"))
    assert caught.value.message == f"a.xml line 1: {DOCTYPE_REFUSED}"


def test_unknown_encoding_is_a_clean_error():
    with pytest.raises(ImportFormatError) as caught:
        list(iterparse(io.BytesIO(b'<?xml version="1.0" encoding="TF-8"?><a/>'), "a.xml"))
    assert caught.value.message == "a.xml line 1: the XML cannot be read (unknown encoding: TF-8)"


def test_local_splits_namespace_uri_and_name():
    assert local("{http://naesb.org/espi}IntervalBlock") == (
        "http://naesb.org/espi",
        "IntervalBlock",
    )
    assert local("HealthData") == ("", "HealthData")
