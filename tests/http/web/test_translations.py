"""The pages are ready for translation: no template shows words outside ``_()``, the committed
catalogue holds every marked string (``make messages`` was run), and the owner's locale
formats dates and amounts while the words stay English.

Two checks cover a template's words, because neither alone can:

- the scan reads each template the way Jinja does (its own parser, so a tag, a comment or a
  string inside ``{{ }}`` is never taken for page text) and flags text between HTML tags
  and in the attributes a person reads (``title``, ``alt``, ``placeholder``,
  ``aria-label``, ``data-label``) that holds a letter, plus string constants a ``{{ }}``
  prints directly (``{{ "yes" if x else "no" }}``, ``{{ x or "none" }}``);
- the extraction runs Babel's extractor over the sources as ``make messages`` does and
  compares what it finds with the committed ``messages.pot`` and ``en/messages.po``, and
  ``en/messages.mo`` with the ``.po`` compiled: a string marked but not extracted fails here.
"""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from jinja2 import Environment, nodes

from pds.http import locale
from tests.oauth_kit import seed

ROOT = Path(__file__).resolve().parents[3]
TEMPLATES = ROOT / "pds" / "http" / "web" / "templates"
CATALOGUE = ROOT / "pds" / "http" / "web" / "translations"
READ_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label", "data-label"}
NOT_WORDS = {"pds — pds"}  # the product's name in every page's title
PENDING: set[str] = set()
"""Templates whose words are not all marked yet."""

TAG = re.compile(r"{%.*?%}|{{.*?}}|{#.*?#}", re.S)
# a macro with no HTML tag in it writes attributes (aria-invalid="true"), not page text
ATTRIBUTE_MACRO = re.compile(r"{%-? macro [^%]*%}[^<]*?{%-? endmacro -?%}", re.S)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        for name, value in attrs:
            if name in READ_ATTRIBUTES and value and _words(value):
                self.found.append(f"{name}={value!r}")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip and _words(data):
            self.found.append(data.strip())


def _words(text: str) -> bool:
    text = " ".join(text.split())
    return bool(re.search(r"[A-Za-z]", text)) and text not in NOT_WORDS


def _printed_constants(node: nodes.Node) -> list[str]:
    """String constants a ``{{ }}`` prints as they are (not a gettext call's argument)."""
    if isinstance(node, nodes.Const):
        return [node.value] if isinstance(node.value, str) and _words(node.value) else []
    if isinstance(node, nodes.CondExpr):
        return _printed_constants(node.expr1) + (
            _printed_constants(node.expr2) if node.expr2 is not None else []
        )
    if isinstance(node, nodes.Or | nodes.And):
        return _printed_constants(node.left) + _printed_constants(node.right)
    if isinstance(node, nodes.Concat):
        return [c for n in node.nodes for c in _printed_constants(n)]
    if isinstance(node, nodes.Filter) and node.node is not None:
        return _printed_constants(node.node)
    return []


def unmarked(source: str) -> list[str]:
    """The words of a template a person would read that are not inside ``_()``."""
    env = Environment(extensions=["jinja2.ext.i18n"], autoescape=True)
    found = []
    for output in env.parse(source).find_all(nodes.Output):
        in_tag = False  # inside <...>: a printed constant there is an attribute's value
        for expr in output.nodes:
            if isinstance(expr, nodes.TemplateData):
                opened, closed = expr.data.rfind("<"), expr.data.rfind(">")
                in_tag = opened > closed if opened != closed else in_tag
                continue
            if not in_tag:
                found += _printed_constants(expr)
    text = _Text()
    text.feed(TAG.sub("", ATTRIBUTE_MACRO.sub("", source)))
    text.close()
    return found + text.found


def test_the_scan_finds_words_outside_gettext() -> None:
    assert unmarked(
        '<h1>{{ _("Marked") }}</h1><p>Plain words</p><td data-label="Who">{{ x }}</td>'
        '<p>{{ "yes" if ok else _("no") }}</p><p>{{ name or "none stated" }}</p>'
        "{# a comment #}<p>{{ n }} {{ _('%(n)s left', n=n) }}</p><th>#</th>"
    ) == ["yes", "none stated", "Plain words", "data-label='Who'"]


@pytest.mark.parametrize(
    "name",
    sorted(
        str(p.relative_to(TEMPLATES))
        for p in TEMPLATES.rglob("*.html")
        if str(p.relative_to(TEMPLATES)) not in PENDING
    ),
)
def test_no_template_shows_words_outside_gettext(name: str) -> None:
    assert unmarked((TEMPLATES / name).read_text(encoding="utf-8")) == []


def _ids(catalog) -> set[object]:
    return {m.id if isinstance(m.id, str) else tuple(m.id) for m in catalog if m.id}


def test_the_committed_catalogue_holds_every_marked_string() -> None:
    with (ROOT / "babel.cfg").open(encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {
        "_": None,
        "gettext": None,
        "ngettext": (1, 2),
        "lazy_gettext": None,
    }
    extracted = {
        (msgid if isinstance(msgid, str) else tuple(msgid))
        for _file, _line, msgid, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords
        )
    }
    with (CATALOGUE / "messages.pot").open("rb") as f:
        pot = _ids(read_po(f))
    english = CATALOGUE / "en" / "LC_MESSAGES"
    with (english / "messages.po").open("rb") as f:
        po = read_po(f)
    compiled = BytesIO()
    write_mo(compiled, po, use_fuzzy=True)
    assert sorted(map(str, extracted - pot)) == [], "run make messages"
    assert sorted(map(str, pot - extracted)) == [], "run make messages"
    assert _ids(po) == pot
    assert (english / "messages.mo").read_bytes() == compiled.getvalue(), "run make messages"
    assert "Skip to content" in pot
    assert ("%(num)s record", "%(num)s records") in pot


def test_a_german_owner_reads_german_dates_and_numbers_in_english_words(kit, vault) -> None:
    seed(vault)  # 6 transactions and 1 energy reading, imported today
    kit.login()
    imported = vault.sources()[0]["imported_at"][:10]
    year, month, day = imported.split("-")
    english = kit.http.get("/", headers={"Accept-Language": "en-GB"}).text
    german = kit.http.get("/", headers={"Accept-Language": "de"}).text
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sept", "Oct"]
    months += ["Nov", "Dec"]
    assert (f'<td data-label="Imported">{int(day)} {months[int(month) - 1]} {year}</td>') in english
    assert f'<td data-label="Imported">{day}.{month}.{year}</td>' in german
    assert "<p>7 records from 2 imported files.</p>" in german
    assert '<h2 id="arrived">What arrived recently</h2>' in german


@pytest.fixture
def german(vault):
    """The app of a server started with ``PDS_LOCALE=de_DE``."""
    from pds.http.app import create_app
    from tests.oauth_kit import Kit

    app = create_app(replace(vault.settings, locale="de_DE"), vault.keyring)
    yield Kit(app, vault)
    for v in app.extensions["pds_vaults"].values():
        v.close()
    app.extensions["pds_counters"].close()


def test_pds_locale_wins_over_the_browser(german, vault) -> None:
    seed(vault)
    german.login()
    imported = vault.sources()[0]["imported_at"][:10]
    year, month, day = imported.split("-")
    page = german.http.get("/", headers={"Accept-Language": "en-GB"}).text
    assert f'<td data-label="Imported">{day}.{month}.{year}</td>' in page
    assert "<title>Your vault — pds</title>" in page
    with german.app.test_request_context(headers={"Accept-Language": "en-GB"}):
        assert locale.money("-1234.5", "EUR") == "-1.234,50\xa0€"
        assert locale.number(1234567) == "1.234.567"
        assert locale.day("2019-09-05") == "05.09.2019"
