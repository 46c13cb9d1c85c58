"""The connector registry: connectors found through the ``pds.connectors`` entry points.

Entry points are loaded once per process. Tests (and plugins loaded by hand) can add a
connector with ``register`` and take it away with ``unregister``.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import PurePath

from connectors.base import Connector
from pds.errors import ImportFormatError, UnknownConnector

HEAD_BYTES = 4096
GROUP = "pds.connectors"

_loaded: dict[str, Connector] | None = None
# Entry points that failed to load: (entry point name, "ExceptionType: message").
broken: list[tuple[str, str]] = []


def _load() -> dict[str, Connector]:
    """Load every connector once. A plugin that fails to load is listed in ``broken``,
    so one bad third-party package cannot stop pds from reading any file."""
    global _loaded
    if _loaded is None:
        found: dict[str, Connector] = {}
        for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
            try:
                cls = ep.load()
                found[cls.name] = cls()
            except Exception as exc:  # a third-party plugin's bug, reported, not fatal
                broken.append((ep.name, f"{type(exc).__name__}: {exc}"))
        _loaded = found
    return _loaded


def all_connectors() -> list[Connector]:
    """Every registered connector, by name."""
    return [c for _, c in sorted(_load().items())]


def get(name: str) -> Connector:
    """The connector called ``name``; UnknownConnector lists the ones there are."""
    try:
        return _load()[name]
    except KeyError:
        names = ", ".join(sorted(_load()))
        raise UnknownConnector(
            f'no connector called "{name}"',
            hint=f"Known connectors: {names}. `pds connectors` lists them.",
        ) from None


def detect(head: bytes, filename: str) -> Connector:
    """The one connector that recognises the file from its first bytes and its name."""
    matches = [c for c in all_connectors() if c.detect(head, filename)]
    if len(matches) == 1:
        return matches[0]
    shown = PurePath(filename).name
    if not matches:
        raise ImportFormatError(
            f"{shown}: pds does not recognise this file's format",
            hint="`pds connectors` lists the formats pds reads; pass --connector NAME to choose.",
        )
    names = ", ".join(c.name for c in matches)
    raise ImportFormatError(
        f"{shown}: the file could be any of {names}",
        hint="Pass --connector NAME to choose one.",
    )


def register(connector: Connector) -> None:
    """Add a connector for this process (tests, or a plugin loaded by hand)."""
    _load()[connector.name] = connector


def unregister(name: str) -> None:
    _load().pop(name, None)
