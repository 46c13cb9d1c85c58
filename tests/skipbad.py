"""The shared check that a file with bad rows is refused whole, or imported without them
under --skip-bad, used by every connector's test file."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.base import SKIP_BAD_HINT
from pds.errors import ImportFormatError
from pds.importer import ImportSummary, import_file
from pds.vault import Vault


def assert_skip_bad(
    vault: Vault, path: Path, rejected_rows: list[str], new: int, **kwargs: object
) -> ImportSummary:
    """Without skip_bad: the first rejected row's exact error and an untouched vault.
    With it: ``new`` records stored and exactly ``rejected_rows`` listed."""
    before = _contents(vault)
    with pytest.raises(ImportFormatError) as caught:
        import_file(vault, path, **kwargs)
    assert (caught.value.message, caught.value.hint) == (rejected_rows[0], SKIP_BAD_HINT)
    assert _contents(vault) == before
    summary = import_file(vault, path, skip_bad=True, **kwargs)
    assert (summary.new, summary.duplicate, summary.rejected) == (new, 0, len(rejected_rows))
    assert summary.rejected_rows == rejected_rows
    assert vault.status()["records"] == before[0] + new
    return summary


def _contents(vault: Vault) -> tuple[int, dict[str, int], list[dict[str, object]]]:
    status = vault.status()
    return status["records"], status["categories"], vault.sources()
