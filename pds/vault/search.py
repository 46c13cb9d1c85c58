"""The search index's words: what a record's payload is split into, and the keyed hash each
word is stored as (its rows are ``pds.db.search``).

A payload's words are the values of its fields (strings and numbers, and the strings and
numbers inside lists and objects), normalised by NFKC and case-folded, split at everything
that is not a letter or a digit; words of one character are dropped, each word counts once
per record, and at most :data:`MAX_WORDS` are kept. The fields of :data:`NOT_WORDS` are left
out: a category's amounts, readings, dates, times and coordinates (the category pages
filter and show those; as words they were most of the index, the digits of every amount).
A word is stored as the first :data:`TERM_BYTES` bytes of HMAC-SHA256 under a key derived
from the master key (a salt in ``meta``), never in the clear. A query is split the same
way, and a record matches when it holds every word of it. Matching is by whole words:
``coffee`` finds "Coffee shop" but not "coffeehouse".

:func:`fill` indexes the records a vault held before it had an index (a vault from an
older schema), in batches, on the first unlock: the key is needed, and the schema migration
has none.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sqlite3
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from pds.db import keys as keystore
from pds.db import schema_version, transaction
from pds.db import search as index

TERM_BYTES = index.TERM_BYTES
"""Bytes kept of each word's HMAC: 96 bits, no collision in any vault's vocabulary."""
MIN_LENGTH = 2
MAX_WORDS = 200
"""Words indexed per record, in the order the payload's fields give them (sorted keys)."""
MAX_QUERY_WORDS = 32
"""Words of a query looked for; the rest are ignored."""
FILL_BATCH = 2000
"""Records indexed per transaction when an older vault is indexed (:func:`fill`)."""
SCHEMA = 8
"""The schema version that made the index (``search_terms``; schema 11 made it again
without the fields of :data:`NOT_WORDS`)."""
SALT = "search_salt"
DONE = "search_indexed"
PROGRESS = "search_indexed_upto"
_WORD = re.compile(r"[^\W_]+")
_CACHE = 200_000

NOT_WORDS: dict[str, frozenset[str]] = {
    category: frozenset(fields)
    for category, fields in {
        "transactions": ("date", "amount", "balance"),
        "balances": ("date", "amount"),
        "energy": ("start", "duration", "value", "cost"),
        "health": ("start", "end", "tz_offset", "value"),
        "intentions": ("from_date", "until_date", "expires_at"),
        "contacts": ("birthday",),
        "events": ("start", "end", "start_local", "end_local"),
        "locations": ("time", "latitude", "longitude", "accuracy"),
        "activity": ("time",),
    }.items()
}
"""Per category, the top-level fields whose values are not indexed: amounts, readings,
dates, times and coordinates, numbers the category pages filter by and show."""
_NONE: frozenset[str] = frozenset()


def words(text: str) -> list[str]:
    """The words of ``text``: NFKC, case-folded, split at non-letters and non-digits, each
    at least :data:`MIN_LENGTH` characters, in order (repeats kept)."""
    # ASCII is its own NFKC form, and casefold() is lower() on it.
    folded = text.lower() if text.isascii() else unicodedata.normalize("NFKC", text).casefold()
    return [w for w in _WORD.findall(folded) if len(w) >= MIN_LENGTH]


def _leaves(value: Any, out: list[str], skip: frozenset[str] = _NONE) -> None:
    """Append the text of ``value``'s strings and numbers to ``out``, keys in sorted order,
    but the values of ``value``'s own keys in ``skip``."""
    if type(value) is dict:  # the common case first: a payload of strings and nulls
        for key in sorted(value):
            if key in skip:
                continue
            item = value[key]
            if type(item) is str:
                out.append(item)
            elif item is not None:
                _leaves(item, out)
    elif isinstance(value, str):
        out.append(value)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        out.append(str(value))
    elif isinstance(value, dict):
        for key in sorted(value):
            _leaves(value[key], out)
    elif isinstance(value, list | tuple):
        for item in value:
            _leaves(item, out)


_SEPARATOR = "\n"
"""Between the values in one text: not part of a word, and NFKC composes nothing across
it, so the words of the joined text are the words of each value, in order."""


def payload_words(payload: dict[str, Any], category: str | None = None) -> list[str]:
    """The distinct words of a payload's values, first seen first, at most
    :data:`MAX_WORDS`; with ``category``, not those of its :data:`NOT_WORDS` fields."""
    texts: list[str] = []
    _leaves(payload, texts, NOT_WORDS.get(category, _NONE) if category else _NONE)
    found = list(dict.fromkeys(words(_SEPARATOR.join(texts))))
    return found[:MAX_WORDS]


class Terms:
    """Words to terms under one vault's search key (with a cache of the words seen)."""

    def __init__(self, key: bytes):
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)  # copied per word: key set once
        self._seen: dict[str, bytes] = {}

    def term(self, word: str) -> bytes:
        found = self._seen.get(word)
        if found is None:
            if len(self._seen) >= _CACHE:
                self._seen.clear()
            mac = self._keyed.copy()
            mac.update(word.encode())
            found = self._seen[word] = mac.digest()[:TERM_BYTES]
        return found

    def of_payload(self, payload: dict[str, Any], category: str | None = None) -> list[bytes]:
        """The terms of :func:`payload_words` (same arguments)."""
        seen, term = self._seen, self.term
        return [seen.get(w) or term(w) for w in payload_words(payload, category)]

    def of_query(self, query: str) -> list[bytes]:
        """The terms of the distinct words of ``query``, the first :data:`MAX_QUERY_WORDS` of
        them (none: the query has no word to look for)."""
        return [self.term(w) for w in list(dict.fromkeys(words(query)))[:MAX_QUERY_WORDS]]

    def index(
        self, conn: sqlite3.Connection, rows: Iterable[tuple[int, str, str, bytes | dict[str, Any]]]
    ) -> None:
        """Store the terms of records given as (id, category, occurred_at, canonical payload
        JSON or the payload dict it was made from), in the caller's transaction: a row per
        term, and each record's terms in one row (what deletes them with it)."""
        out: list[tuple[bytes, str, str, int]] = []
        kept: list[tuple[int, bytes]] = []
        add, keep, loads, of_payload = out.append, kept.append, json.loads, self.of_payload
        for rid, category, occurred_at, plain in rows:
            terms = of_payload(plain if isinstance(plain, dict) else loads(plain), category)
            if terms:
                for term in terms:
                    add((term, category, occurred_at, rid))
                keep((rid, b"".join(terms)))
        # By term (a stable sort: a term's rows stay in record order), so that neighbouring
        # rows go to neighbouring keys; the whole tuple would cost 4x the time to compare.
        out.sort(key=itemgetter(0))
        index.insert_terms(conn, out, kept)


def salt(conn: sqlite3.Connection) -> bytes:
    """The stored salt of the vault's search key (made by schema 8)."""
    return keystore.get_meta(conn, SALT)


def complete(conn: sqlite3.Connection) -> bool:
    """True when every record is in the index (a new vault, or :func:`fill` has finished),
    or when there is no index to fill (a schema older than :data:`SCHEMA`, left so)."""
    return schema_version(conn) < SCHEMA or keystore.get_meta(conn, DONE) is not None


def fill(
    conn: sqlite3.Connection,
    terms: Terms,
    plain: Callable[[tuple], bytes | None],
    batch: int | None = None,
) -> int:
    """Index the records of a vault made before the index, :data:`FILL_BATCH` at a time, each
    batch in its own transaction with its progress (so an interrupted fill goes on where it
    stopped); ``plain`` opens a row (None: it does not open, and is left out). Returns the
    number of records indexed."""
    batch = batch or FILL_BATCH
    done = 0
    while not complete(conn):
        with transaction(conn):
            if complete(conn):
                break
            after = int(keystore.get_meta(conn, PROGRESS) or 0)
            rows = index.rows_after(conn, after, batch)
            opened = [(r[0], r[1], r[3], plain(r)) for r in rows]
            terms.index(conn, [r for r in opened if r[3] is not None])
            done += len(rows)
            if len(rows) < batch:
                keystore.set_meta(conn, DONE, "1")
            else:
                keystore.set_meta(conn, PROGRESS, str(rows[-1][0]))
    return done


def index_new(
    conn: sqlite3.Connection,
    terms: Terms,
    rows: list[tuple],
    plains: list[bytes | dict[str, Any]],
    stored: int,
) -> None:
    """Index the rows of one batch just handed to ``pds.db.records.insert_rows`` (their ids
    consecutive), with their payloads ``plains`` (canonical JSON, or the dict it was made
    from): only the ``stored`` ones it kept (the
    others were already in the vault, and are indexed already)."""
    if not stored:
        return
    kept = None if stored == len(rows) else index.inserted_ids(conn, rows[0][0], rows[-1][0])
    terms.index(
        conn,
        [
            (r[0], r[1], r[3], p)
            for r, p in zip(rows, plains, strict=True)
            if kept is None or r[0] in kept
        ],
    )


@dataclass(frozen=True)
class Group:
    """One category's matches: how many records match, and the ids of a page of them."""

    category: str
    count: int
    ids: list[int]


def find(
    conn: sqlite3.Connection, found: list[bytes], category: str | None, per_category: int
) -> list[Group]:
    """The records holding every term of ``found``, by category (name order; only
    ``category`` when given): each with its count and its newest ``per_category`` ids."""
    ordered = index.rarest_first(conn, found)
    return [
        Group(cat, n, index.newest(conn, ordered, cat, limit=per_category))
        for cat, n in index.counts(conn, ordered, category).items()
    ]


MAIN_FIELDS = (
    "description",
    "summary",
    "full_name",
    "name",
    "title",
    "display",
    "counterparty",
    "amount",
    "value",
    "unit",
    "currency",
    "type",
    "resourceType",
)
"""Fields a record's one-line summary shows first, when the payload has them."""


def summary(payload: dict[str, Any], fields: int = 3, length: int = 120) -> str:
    """A short line of a payload's main values: the first ``fields`` non-empty text or number
    values, the :data:`MAIN_FIELDS` first, then the others but the date, joined by " · "
    and cut to ``length`` characters."""
    keys = [k for k in MAIN_FIELDS if k in payload]
    keys += [k for k in payload if k not in MAIN_FIELDS and k != "date"]
    shown: list[str] = []
    for key in keys:
        value = payload[key]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            continue
        text = " ".join(str(value).split())
        if text and text not in shown:
            shown.append(text)
        if len(shown) == fields:
            break
    line = " · ".join(shown)
    return line if len(line) <= length else line[: length - 1].rstrip() + "…"
