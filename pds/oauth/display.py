"""What a business chose to say about itself (its name, its website), made safe to show.

A name is shown to the owner on the consent page, the Businesses and home pages, the access
history, receipts and the CLI. Unicode can make a string *read* differently from what it is:
bidirectional controls (U+202E RIGHT-TO-LEFT OVERRIDE, U+2066..U+2069 isolates, U+200E/F
marks, U+061C; see Unicode TR #9 and CVE-2021-42574 "Trojan Source") reverse the text after
them, zero-width characters hide, line separators and control characters break a line. The
characters refused and marked are those of the general categories ``Cc`` (controls), ``Cf``
(format: every bidi control, zero-width space/joiners, BOM, tag characters), ``Zl``, ``Zp``
(line and paragraph separators), ``Cs`` and ``Co`` (surrogates, private use), plus those
that render blank or draw over their neighbour (:data:`BLANK`) and every space but U+0020.
A name is at most :data:`MAX_NAME` characters, and text fields must be strings.

- Registration refuses them (RFC 7591 ``invalid_client_metadata``; the owner's own
  ``pds clients add`` says what was wrong): :func:`unsafe_metadata`, :func:`unsafe_name`.
- A name stored before that (or by an older pds) is shown with each such character replaced
  by a visible ``[U+202E]``: :func:`shown`, applied where clients are read (``pds.oauth.store``).
- A website is shown by its host, in ASCII (an international name in its ``xn--`` form, so a
  look-alike letter cannot pass for another): :func:`website`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pds.errors import ValidationError

UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co"})
# Characters of other categories that render blank or draw over their neighbour, the usual
# tools of a name that pretends to be another: Hangul fillers, the braille blank, the
# combining grapheme joiner, overlay strokes (U+0334..U+0338), variation selectors; and every
# space but the plain one (Zs: no-break, em, ideographic, ...).
BLANK = frozenset(
    {0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800, 0x034F}
    | set(range(0x0334, 0x0339))
    | set(range(0xFE00, 0xFE10))
    | set(range(0xE0100, 0xE01F0))
)
URI_FIELDS = ("client_uri", "tos_uri", "policy_uri", "logo_uri", "jwks_uri")
TEXT_FIELDS = ("client_name", "software_id", "software_version", *URI_FIELDS)
MAX_NAME = 120
"""The longest ``client_name`` pds shows (characters)."""
MAX_TEXT = 2000
"""The longest other metadata string (a URI, a contact)."""


def unsafe(ch: str) -> bool:
    """Whether ``ch`` can hide, reorder or break the text around it, or pass for a space."""
    category = unicodedata.category(ch)
    return category in UNSAFE_CATEGORIES or ord(ch) in BLANK or (category == "Zs" and ch != " ")


def mark(ch: str) -> str:
    return f"[U+{ord(ch):04X}]"


def shown(text: str) -> str:
    """``text`` with every unsafe character replaced by a visible ``[U+XXXX]``."""
    return "".join(mark(c) if unsafe(c) else c for c in text)


def unsafe_name(text: str, what: str = "the name") -> str | None:
    """Why ``text`` cannot be a name shown to the owner, or None."""
    found = next((c for c in text if unsafe(c)), None)
    if found is None:
        return None
    return (
        f"{what} contains the invisible or text-reversing character {mark(found)} "
        f"({unicodedata.name(found, 'a control character')}); send it as it should read, "
        "without control or formatting characters"
    )


def checked_name(name: str, whose: str, noun: str) -> str:
    """``name`` without surrounding spaces, or ValidationError when it is empty, holds an
    unsafe character or is longer than :data:`MAX_NAME`. ``whose`` begins the message
    ("the client's name"); ``noun`` is what the hints call its owner ("business")."""
    name = name.strip()
    if not name:
        raise ValidationError(f"{whose} is empty", hint=f"Give the {noun}'s name.")
    if problem := unsafe_name(name):
        raise ValidationError(problem, hint=f"Type the {noun}'s name as it should read.")
    if len(name) > MAX_NAME:
        raise ValidationError(f"{whose} is {len(name):,} characters long; keep it to {MAX_NAME}")
    return name


def unsafe_metadata(metadata: dict[str, Any]) -> str | None:
    """Why RFC 7591 client metadata cannot be registered, or None: every string in it is
    free of unsafe characters and of a readable length, every URI field is a plain-ASCII
    http(s) URL, and the fields that are text are strings."""
    for key in TEXT_FIELDS:
        value = metadata.get(key)
        if value is not None and not isinstance(value, str):
            return f"{key} must be a string"
    name = metadata.get("client_name")
    if name is not None and len(name) > MAX_NAME:
        return f"client_name is {len(name):,} characters long; keep it to {MAX_NAME}"
    for key, value in metadata.items():
        for text in _strings(value):
            if len(text) > MAX_TEXT:
                return f"{key} holds {len(text):,} characters; keep each to {MAX_TEXT:,}"
            if problem := unsafe_name(text, key):
                return problem
    for key in URI_FIELDS:
        value = metadata.get(key)
        if value is not None and not _plain_url(value):
            return (
                f"{key} must be an http or https URL in plain ASCII (an international host "
                "name in its xn-- form)"
            )
    return None


def _plain_url(value: Any) -> bool:
    return (
        isinstance(value, str)
        and all(" " < c < "\x7f" for c in value)
        and (site := website(value)) is not None
        and site.host == urlsplit(value).hostname
    )


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    return []


@dataclass(frozen=True)
class Website:
    """A URL a business gave, and its host as plain ASCII."""

    url: str
    host: str


def website(value: Any) -> Website | None:
    """The URL and its host in ASCII (IDNA), or None when it is no http(s) URL or holds an
    unsafe character."""
    if not isinstance(value, str) or any(unsafe(c) or c.isspace() for c in value):
        return None
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - a bad port raises here
        ascii_host = host.encode("idna").decode("ascii") if host else ""
    except (ValueError, UnicodeError):
        return None
    if parts.scheme not in ("http", "https") or not ascii_host:
        return None
    return Website(value, ascii_host)
