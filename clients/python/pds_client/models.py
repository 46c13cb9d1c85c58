"""What a business sends and gets: the authorization request's items (RFC 9396
``pds_records``) and the records API's answers, as frozen dataclasses (records themselves
are in :mod:`pds_client.records`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from pds_client.records import Record

RAR_TYPE = "pds_records"


# -- what a business asks for -------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """One RFC 9396 ``pds_records`` item: what to do with which categories.

    ``fields`` limits what is read per record; ``since``/``until`` the records' dates (both
    inclusive: the item's ``time_range``); ``purpose`` is a W3C DPV term such as
    ``dpv:ServiceProvision`` (shown to the person in plain words); ``expires_in`` how long
    the grant lasts (seconds or a timedelta, 60 s to 365 days; the vault's default is 90
    days). ``actions``: ``read``, ``write`` and/or ``aggregate``. See docs/oauth.md."""

    categories: Sequence[str]
    actions: Sequence[str] = ("read",)
    fields: Sequence[str] | None = None
    since: date | str | None = None
    until: date | str | None = None
    purpose: str | None = None
    expires_in: int | timedelta | None = None

    def detail(self) -> dict[str, Any]:
        """The item as JSON for ``authorization_details``."""
        categories = [self.categories] if isinstance(self.categories, str) else self.categories
        item: dict[str, Any] = {
            "type": RAR_TYPE,
            "actions": list(self.actions),
            "categories": list(categories),
        }
        if self.fields is not None:
            item["fields"] = list(self.fields)
        if self.since is not None or self.until is not None:
            item["time_range"] = {
                k: str(v) for k, v in (("from", self.since), ("to", self.until)) if v is not None
            }
        if self.purpose is not None:
            item["purpose"] = self.purpose
        if self.expires_in is not None:
            seconds = self.expires_in
            if isinstance(seconds, timedelta):
                seconds = int(seconds.total_seconds())
            item["expires_in"] = seconds
        return item


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the person, and what :meth:`Client.exchange` needs to finish: keep it
    (in the person's session) until the browser comes back."""

    url: str
    state: str
    code_verifier: str
    redirect_uri: str


# -- what the API answers -----------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page of ``GET /api/v1/records``; ``next_cursor`` is None on the last."""

    records: list[Record]
    next_cursor: str | None


@dataclass(frozen=True)
class Bucket:
    """One calendar cell of an aggregate; ``value`` is an int for ``count``, else Decimal."""

    bucket: str
    count: int
    value: int | Decimal
    currency: str | None = None
    unit: str | None = None


@dataclass(frozen=True)
class Aggregates:
    """``GET /api/v1/aggregates``: buckets in time order, and how many were suppressed."""

    category: str
    measure: str
    field: str | None
    by: str
    since: str | None
    until: str | None
    min_bucket: int
    per: str | None
    buckets: list[Bucket]
    suppressed: int


@dataclass(frozen=True)
class Change:
    """One entry of the profile and intentions feed (``changes(since=...)``): which fields
    changed (names only, never values)."""

    seq: int
    category: str
    fields: list[str]
    at: str


@dataclass(frozen=True)
class RecordChange:
    """One entry of the change feed: records ``first_id`` to ``last_id`` of ``category``
    were ``added``, ``changed`` or ``forgotten`` at ``at`` (ids only, never values)."""

    seq: int
    at: str
    kind: str
    category: str
    first_id: int
    last_id: int
    count: int


@dataclass(frozen=True)
class ChangesPage:
    """One page of the change feed; pass ``next_cursor`` to read on (also later, to poll)."""

    changes: list[RecordChange]
    next_cursor: str
    more: bool


@dataclass(frozen=True)
class Subscription:
    """A webhook subscription; ``secret`` only in the answer that created it."""

    id: str
    url: str
    categories: list[str]
    created_at: str
    secret: str | None = None
