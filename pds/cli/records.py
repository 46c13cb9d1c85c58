"""Getting data in and reading it back: ``pds import``, ``pds connectors``, ``pds records``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from connectors.fhir import UNDATED
from pds.cli.common import (
    EXIT_ERROR,
    WholeNumber,
    category_option,
    day_option,
    emit,
    json_option,
    report,
    with_vault,
)
from pds.cli.rights import check_fulfils, fulfil_by_import
from pds.errors import PdsError

if TYPE_CHECKING:
    from pds.vault import Vault


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--connector", "connector_name", help="Read the files as this format.")
@click.option(
    "--skip-bad", is_flag=True, help="Leave out bad rows (each is listed), not the whole file."
)
@click.option(
    "--fulfils", type=WholeNumber(1), metavar="N", help="The file answers access request N."
)
@click.option(
    "--mapping",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Read bank CSV files with this mapping file (see docs/connectors.md).",
)
@json_option
@with_vault
def import_(
    v: Vault,
    files: tuple[Path, ...],
    connector_name: str | None,
    skip_bad: bool,
    fulfils: int | None,
    mapping: Path | None,
    as_json: bool,
) -> None:
    """Import statement and export files, each all or nothing (a folder: each file in it
    that pds recognises)."""
    from pds.importer import expand_paths, import_file

    if fulfils is not None:
        check_fulfils(v, fulfils, files)
    if mapping is not None:
        connector_name = _mapping_connector(mapping, connector_name)
    results: list[dict[str, Any]] = []
    errors: list[str] = []
    show_bar = not as_json and sys.stderr.isatty()
    for path in expand_paths(files, connector_name):
        try:
            size = path.stat().st_size if path.is_file() else 0
            with click.progressbar(
                length=size, label=path.name, file=sys.stderr if show_bar else _Null()
            ) as bar:
                summary = import_file(
                    v, path, connector=connector_name, skip_bad=skip_bad, progress=bar.update
                )
        except PdsError as exc:
            errors.append(exc.message)
            report(exc.message, exc.hint)
            continue
        results.append(summary.as_dict())
        if not as_json:
            click.echo(
                f"{summary.file}: {summary.new} new, {summary.duplicate} already present, "
                f"{summary.rejected} rejected ({summary.connector})"
            )
            for row in summary.rejected_rows:
                click.echo(f"  rejected: {row}")
    done = fulfil_by_import(v, fulfils, results, as_json) if fulfils and not errors else {}
    if as_json:
        emit(
            {
                "new": sum(r["new"] for r in results),
                "duplicate": sum(r["duplicate"] for r in results),
                "rejected": sum(r["rejected"] for r in results),
                "files": results,
                "errors": errors,
                **done,
            }
        )
    if errors:
        sys.exit(EXIT_ERROR)


def _mapping_connector(mapping: Path, connector_name: str | None) -> str:
    """Register the bank CSV engine with one mapping file for this run; return its name."""
    from pds import registry

    if connector_name is not None:
        raise click.UsageError("--mapping and --connector cannot be used together")
    conn = registry.get("bankcsv").with_mapping(mapping)  # type: ignore[attr-defined]
    registry.register(conn)
    click.get_current_context().call_on_close(lambda: registry.unregister(conn.name))
    return conn.name


class _Null:
    def write(self, _: str) -> None:
        pass

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


@click.command()
@json_option
def connectors(as_json: bool) -> None:
    """List the file formats pds can import."""
    from pds import registry

    items = [
        {
            "name": c.name,
            "title": c.title,
            "extensions": list(c.extensions),
            "categories": list(c.categories),
        }
        for c in registry.all_connectors()
    ]
    if as_json:
        emit(items)
        return
    width = max((len(c["name"]) for c in items), default=0) + 2
    for c in items:
        click.echo(
            f"{c['name']:<{width}}{c['title']}  [{', '.join(c['extensions'])}] -> "
            f"{', '.join(c['categories'])}"
        )
    for name, why in registry.broken:
        click.echo(f"Warning: connector plugin {name!r} failed to load ({why})", err=True)


@click.command("records")
@click.option("--category", callback=category_option, help="Only this category, e.g. transactions.")
@click.option("--since", callback=day_option, is_eager=True, help="From this date (YYYY-MM-DD).")
@click.option("--until", callback=day_option, help="Up to this date (YYYY-MM-DD), inclusive.")
@click.option("--limit", type=WholeNumber(1), help="At most this many records.")
@json_option
@with_vault
def records_(
    v: Vault,
    category: str | None,
    since: date | None,
    until: date | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Print records, oldest first, streamed (any vault size)."""
    start, end = since, until
    found = v.records(
        category=category,
        since=start.isoformat() if start else None,
        until=(end + timedelta(days=1)).isoformat() if end else None,
    )
    counted = _Counted(_take(found, limit))
    try:
        if as_json:
            _stream_json_array(r.as_dict() for r in counted)
            return
        for r in counted:
            p = r.payload
            if r.category == "transactions":
                text = f"{p['amount']:>12} {p['currency']}  {p['description']}"
            else:
                text = json.dumps(p, ensure_ascii=False)
            when = "undated" if r.occurred_at == UNDATED else r.occurred_at
            click.echo(f"{r.id:>8}  {when:<10}  {r.category:<12}  {text}")
    finally:
        v.audit("export", actor="owner", category=category, count=counted.n)


class _Counted:
    """An iterator that counts what it handed out (for the export's log entry)."""

    def __init__(self, items: Iterator[Any]) -> None:
        self.items, self.n = items, 0

    def __iter__(self) -> Iterator[Any]:
        for item in self.items:
            self.n += 1
            yield item


def _take(items: Iterator[Any], limit: int | None) -> Iterator[Any]:
    for i, item in enumerate(items):
        if limit is not None and i >= limit:
            return
        yield item


def _stream_json_array(items: Iterator[dict[str, Any]]) -> None:
    """One JSON array on stdout, written item by item so memory stays flat."""
    click.echo("[", nl=False)
    for i, item in enumerate(items):
        click.echo(("," if i else "") + "\n  " + json.dumps(item, ensure_ascii=False), nl=False)
    click.echo("\n]")
