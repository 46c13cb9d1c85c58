"""The ``pds`` command: each command parses, calls the core, and renders.

Every command that prints data also takes ``--json`` (one JSON document on stdout, nothing
else there). Errors go to stderr as one ``Error: ...`` line (and a ``Hint: ...`` line when
there is something to do) with exit status 1; usage mistakes exit 2 as click does.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from functools import wraps
from pathlib import Path
from typing import Any

import click

from pds import __version__, registry
from pds.cli.types import WholeNumber
from pds.db.locking import is_busy
from pds.errors import ConfigError, PdsError, VaultBusy
from pds.settings import Settings, load_settings
from pds.vault import Vault
from pds.words import plural

EXIT_ERROR = 1
EXIT_INTERNAL = 70


def fail(message: str, hint: str | None = None) -> None:
    click.echo(f"Error: {message}", err=True)
    if hint:
        click.echo(f"Hint: {hint}", err=True)
    sys.exit(EXIT_ERROR)


class PdsGroup(click.Group):
    """Turns PdsError into a one-line message, and anything unexpected into one too."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PdsError as exc:
            fail(exc.message, exc.hint)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            fail("interrupted; nothing was changed by the unfinished step")
        except BrokenPipeError:  # `pds records | head`: the reader has all it wanted
            _quiet_stdout()
            sys.exit(0)
        except Exception as exc:  # never a stack trace to a person
            if is_busy(exc):  # SQLite's own "database is locked", outside pds.db.locking
                busy = VaultBusy()
                fail(busy.message, busy.hint)
            click.echo(f"Error: pds failed unexpectedly ({type(exc).__name__}: {exc})", err=True)
            click.echo("Hint: this is a bug in pds; please report it with the command.", err=True)
            sys.exit(EXIT_INTERNAL)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")(f)


def get_settings() -> Settings:
    ctx = click.get_current_context()
    return ctx.find_root().obj


def ask_passphrase(settings: Settings, prompt: str = "Passphrase", confirm: bool = False) -> str:
    """From PDS_PASSPHRASE_FILE, PDS_PASSPHRASE, else the terminal."""
    configured = settings.read_passphrase()
    if configured is not None:
        return configured
    try:
        return click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)
    except click.Abort:
        raise ConfigError(
            "no passphrase given",
            hint="Type it at the prompt, or set PDS_PASSPHRASE_FILE (or PDS_PASSPHRASE).",
        ) from None


def open_vault(settings: Settings | None = None) -> Vault:
    settings = settings or get_settings()
    from pds import vault as vaultmod

    vaultmod.require(settings)
    return Vault.open(settings, ask_passphrase(settings))


def with_vault(f: Callable) -> Callable:
    """Open and unlock the vault for the command, and close it afterwards."""

    @wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with open_vault() as v:
            return f(v, *args, **kwargs)

    return wrapper


@click.group(cls=PdsGroup)
@click.version_option(__version__, prog_name="pds")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """pds: your personal data store. Data lives in PDS_HOME (default ~/.local/share/pds)."""
    ctx.obj = load_settings()


# -- vault --------------------------------------------------------------------------------


def allow_weak_option(f: Callable) -> Callable:
    return click.option(
        "--allow-weak-passphrase",
        "allow_weak",
        is_flag=True,
        help="Accept a passphrase zxcvbn rates weak (a throwaway vault: tests, a demo).",
    )(f)


@cli.command()
@allow_weak_option
@json_option
def init(allow_weak: bool, as_json: bool) -> None:
    """Create a new, empty, encrypted vault."""
    settings = get_settings()
    from pds import vault as vaultmod
    from pds.vault.passphrase import require_strong

    if vaultmod.exists(settings):
        fail(f"a vault already exists at {settings.home}", "Use it, or choose another PDS_HOME.")
    passphrase = ask_passphrase(settings, "Choose a passphrase", confirm=True)
    require_strong(passphrase, allow_weak=allow_weak)
    with Vault.create(settings, passphrase) as v:
        status = v.status()
    if as_json:
        emit({"home": status["home"], "created": True})
    else:
        click.echo(f"Created an encrypted vault at {status['home']}.")
        click.echo("Keep the passphrase safe: without it the data cannot be read by anyone.")


@cli.command()
@json_option
@with_vault
def status(v: Vault, as_json: bool) -> None:
    """Show what the vault holds."""
    st = v.status()
    if as_json:
        emit(st)
        return
    click.echo(f"Vault:      {st['home']} (schema {st['schema_version']})")
    click.echo(f"Records:    {st['records']} from {plural(st['sources'], 'imported file')}")
    cats = st["categories"]  # columns as wide as their longest entry: never run together
    name_w = max((len(c) for c in cats), default=0)
    count_w = max((len(str(n)) for n in cats.values()), default=0)
    for cat, n in cats.items():
        click.echo(f"  {cat:<{name_w}}  {n:>{count_w}}")
    kdf = st["kdf"]
    click.echo(
        f"Encryption: AES-256-GCM; passphrase key by Argon2id "
        f"({kdf['memory_kib'] // 1024} MiB, {kdf['iterations']} iterations, {kdf['lanes']} lanes)"
    )


@cli.command()
@click.option("--new-passphrase-file", type=click.Path(path_type=Path, dir_okay=False))
@allow_weak_option
@json_option
@with_vault
def passphrase(v: Vault, new_passphrase_file: Path | None, allow_weak: bool, as_json: bool) -> None:
    """Change the vault's passphrase (rewraps the master key; data is not re-encrypted)."""
    from pds.vault.passphrase import require_strong

    if new_passphrase_file is not None:
        try:
            new = new_passphrase_file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            fail(f"cannot read {new_passphrase_file}: {exc.strerror}")
    else:
        try:
            new = click.prompt(
                "New passphrase", hide_input=True, confirmation_prompt=True, err=True
            )
        except click.Abort:
            fail("no new passphrase given", "Type it at the prompt or pass --new-passphrase-file.")
    require_strong(new, allow_weak=allow_weak)
    v.change_passphrase(new)
    if as_json:
        emit({"changed": True})
    else:
        click.echo("Passphrase changed. The old one no longer opens this vault.")


# -- import and read -------------------------------------------------------------------------


@cli.command("import")
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
    from pds.cli.rights import check_fulfils, fulfil_by_import
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
            click.echo(f"Error: {exc.message}", err=True)
            if exc.hint:
                click.echo(f"Hint: {exc.hint}", err=True)
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


@cli.command()
@json_option
def connectors(as_json: bool) -> None:
    """List the file formats pds can import."""
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


def _day(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f'"{value}" is not a date like 2024-03-31') from None
    since = ctx.params.get("since")
    if param.name == "until" and since is not None and day < since:
        raise click.BadParameter("--until is before --since")
    return day


def _category(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from pds.vocabulary import CATEGORIES

    if value is not None and value not in CATEGORIES:
        raise click.BadParameter(f'"{value}" is not a category; use one of {", ".join(CATEGORIES)}')
    return value


@cli.command("records")
@click.option("--category", callback=_category, help="Only this category, e.g. transactions.")
@click.option("--since", callback=_day, is_eager=True, help="From this date (YYYY-MM-DD).")
@click.option("--until", callback=_day, help="Up to this date (YYYY-MM-DD), inclusive.")
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
            click.echo(f"{r.id:>8}  {r.occurred_at:<10}  {r.category:<12}  {text}")
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


# -- backup --------------------------------------------------------------------------------


@cli.command()
@click.argument("path", type=click.Path())  # text: a trailing slash says "a folder"
@click.option(
    "--keep",
    type=WholeNumber(1, 100_000),
    metavar="N",
    help="PATH is a folder: afterwards delete the oldest pds backups there so N remain "
    "(files not named pds-backup-<time>.db are never touched).",
)
@json_option
@with_vault
def backup(v: Vault, path: str, keep: int | None, as_json: bool) -> None:
    """Copy the vault to PATH (a file, or a folder to put a dated file in). Stays encrypted."""
    removed: list[Path] = []
    if keep is None:
        written = v.backup(path)
    else:
        written, removed = v.backup_keeping(path, keep)
    size = written.stat().st_size
    if as_json:
        emit(
            {"backup": str(written), "bytes": size}
            | ({"removed": [str(p) for p in removed]} if keep is not None else {})
        )
        return
    click.echo(f"Backed up to {written} ({size:,} bytes, encrypted).")
    if removed:
        names = ", ".join(p.name for p in removed)
        click.echo(f"Removed {plural(len(removed), 'older backup')} (keeping {keep}): {names}.")


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--yes", is_flag=True, help="Replace an existing vault without asking.")
@json_option
def restore(path: Path, yes: bool, as_json: bool) -> None:
    """Replace the vault with a backup (the backup's passphrase opens it)."""
    from pds import vault as vaultmod

    settings = get_settings()
    if vaultmod.exists(settings) and not yes:
        if not sys.stdin.isatty():
            fail(
                f"a vault exists at {settings.home}; restoring replaces it",
                "Pass --yes to replace it.",
            )
        click.confirm(f"Replace the vault at {settings.home} with {path}?", abort=True, err=True)
    st = vaultmod.restore(settings, path, ask_passphrase(settings, "Backup passphrase"))
    before, now = st["schema_before"], st["schema_version"]
    if as_json:
        emit(
            {
                "restored": str(path),
                "records": st["records"],
                "schema_before": before,
                "schema": now,
            }
        )
        return
    click.echo(f"Restored {plural(st['records'], 'record')} from {path} into {settings.home}.")
    if before < now:
        click.echo(
            f"The backup was at schema {before}; this pds upgraded the restored vault to "
            f"schema {now} (to go back to an older pds, restore the backup with that version)."
        )


@cli.command()
@json_option
def upgrade(as_json: bool) -> None:
    """Bring the vault's schema up to this pds, after a backup in PDS_HOME/backups/."""
    from pds.vault.upgrade import upgrade as upgrade_vault

    done = upgrade_vault(get_settings())
    if as_json:
        emit(done.as_dict())
    elif done.upgraded:
        _say_upgraded(done)
    else:
        click.echo(
            f"The vault at {done.home} is at schema {done.schema}, the newest this pds knows; "
            "nothing to do."
        )


def _say_upgraded(done: Any) -> None:
    click.echo(f"Backed up the vault as it was (schema {done.schema_before}) to {done.backup}.")
    click.echo(
        f"Upgraded the vault at {done.home} from schema {done.schema_before} to {done.schema}."
    )


# -- sharing policies -----------------------------------------------------------------------


@cli.group("policy", cls=PdsGroup)
def policy_() -> None:
    """Sharing policies: rules every grant and every request must pass (docs/policies.md)."""


def _rule_rows(rules: Any, file: str | None = None) -> list[dict[str, Any]]:
    return [
        {"id": r.id, "kind": r.kind, **({"file": file} if file else {}), "summary": r.summary()}
        for r in rules
    ]


@policy_.command("list")
@json_option
def policy_list(as_json: bool) -> None:
    """List the policy files (templates and your own), which are in force, and their rules."""
    from pds.policy import PolicyError
    from pds.policyfiles.loader import available, read_file

    files, rules, broken = [], [], None
    for f in available(get_settings().home):
        try:
            found, problem = read_file(f.path, f.label), None
        except PolicyError as exc:
            found, problem = (), exc.message
            if f.enabled and broken is None:
                broken = exc
        files.append(
            {
                "name": f.name,
                "origin": f.origin,
                "enabled": f.enabled,
                "path": str(f.path),
                "title": f.title(),
                "rules": None if problem else len(found),
                "problem": problem,
            }
        )
        if f.enabled:
            rules += _rule_rows(found, f.name)
    if as_json:
        emit({"files": files, "rules": rules})
    else:
        click.echo("Policy files (on: in force):")
        for f in files:
            n = f["rules"]
            count = "broken" if n is None else f"{n} rule{'' if n == 1 else 's'}"
            about = f["title"] if f["origin"] == "template" else f["path"]
            click.echo(
                f"  {'on' if f['enabled'] else 'off':<4} {f['name']:<32} {f['origin']:<9} "
                f"{count:<9} {about}"
            )
        click.echo(f"Rules in force ({len(rules)}):")
        for r in rules:
            click.echo(f"  {r['id']:<36} {r['summary']}")
    if broken is not None:
        fail(broken.message, broken.hint)


@policy_.command("check")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@json_option
def policy_check(file: Path, as_json: bool) -> None:
    """Validate a policy file (nothing changes); the first problem names the rule and field."""
    from pds.policy import PolicyError
    from pds.policyfiles.loader import read_file

    try:
        rules = read_file(file, str(file))
    except PolicyError as exc:
        fail(exc.message, "Fix the file and check it again; nothing was changed.")
    if as_json:
        emit({"file": str(file), "valid": True, "rules": _rule_rows(rules)})
        return
    click.echo(f"{file}: {len(rules)} rule{'' if len(rules) == 1 else 's'}, all valid")
    for r in rules:
        click.echo(f"  {r.id:<36} {r.kind:<17} {r.summary()}")


def _policy_switch(v: Vault, name: str, on: bool, as_json: bool) -> None:
    from pds.policyfiles.loader import read_state, set_enabled, write_state

    home = get_settings().home
    before = read_state(home)
    f, changed = set_enabled(home, name, on)
    if changed:
        try:
            v.audit(
                "policy.change",
                actor="owner",
                detail={
                    "policy": name,
                    "origin": f.origin,
                    "change": "enable" if on else "disable",
                },
            )
        except BaseException:
            write_state(home, before)
            raise
    if as_json:
        emit({"policy": name, "origin": f.origin, "enabled": on, "changed": changed})
    elif changed:
        click.echo(f'"{name}" ({f.origin}) is {"now" if on else "no longer"} in force.')
    else:
        click.echo(f'"{name}" ({f.origin}) was {"already" if on else "not"} in force.')


@policy_.command("enable")
@click.argument("name")
@json_option
@with_vault
def policy_enable(v: Vault, name: str, as_json: bool) -> None:
    """Put a policy in force (checked first: a broken file is refused)."""
    _policy_switch(v, name, True, as_json)


@policy_.command("disable")
@click.argument("name")
@json_option
@with_vault
def policy_disable(v: Vault, name: str, as_json: bool) -> None:
    """Take a policy out of force."""
    _policy_switch(v, name, False, as_json)


def _limits(c: Any, action: str) -> list[str]:
    out = []
    if c.earliest:
        out.append(f"no record dated before {c.earliest}")
    for category, names in c.redacted:
        out.append(f"{category} fields withheld: {', '.join(sorted(names))}")
    if c.max_expires_in is not None:
        days, rest = divmod(c.max_expires_in, 86400)
        longest = plural(days, "day") if not rest else plural(c.max_expires_in, "second")
        out.append(f"a grant lasts at most {longest}")
    if c.rate_limit is not None:
        out.append(f"at most {plural(c.rate_limit, 'request')} a day")
    if action == "aggregate":
        out.append(f"totals from fewer than {plural(c.min_bucket, 'record')} are withheld")
    return out


@policy_.command("explain")
@click.option("--client", "client_id", required=True, help="The business's client id.")
@click.option("--category", required=True, callback=_category, help="e.g. transactions.")
@click.option("--purpose", help="A DPV purpose, e.g. dpv:CreditChecking.")
@click.option(
    "--action",
    default="read",
    show_default=True,
    type=click.Choice(["read", "write", "aggregate"]),
)
@click.option("--field", "fields", multiple=True, help="Only these fields (repeatable).")
@click.option("--since", callback=_day, is_eager=True, help="From this date (YYYY-MM-DD).")
@click.option("--until", callback=_day, help="Up to this date (YYYY-MM-DD), inclusive.")
@click.option("--grant-days", type=WholeNumber(1, 36500), help="The grant length asked for.")
@json_option
def policy_explain(
    client_id: str,
    category: str,
    purpose: str | None,
    action: str,
    fields: tuple[str, ...],
    since: date | None,
    until: date | None,
    grant_days: int | None,
    as_json: bool,
) -> None:
    """What today's policies decide for a request, and why (nothing is logged or changed)."""
    from datetime import UTC, datetime

    from pds.policy import Request, decide, label
    from pds.policyfiles.loader import load_active

    rules, _ = load_active(get_settings().home)
    req = Request(
        client_id,
        action,
        (category,),
        fields=fields or None,
        purpose=purpose,
        since=since,
        until=until,
        expires_in=grant_days * 86400 if grant_days else None,
    )
    d = decide(req, rules, datetime.now(UTC))
    if as_json:
        emit(
            {
                "client": client_id,
                "action": action,
                "category": category,
                "purpose": purpose,
                "purpose_label": label(purpose),
                **d.as_dict(),
            }
        )
        return
    what = f"for {label(purpose)} ({purpose})" if purpose else "with no stated purpose"
    if not d.allowed:
        click.echo(f"Refused: {client_id} may not {action} {category} {what}.")
    else:
        limits = _limits(d.constraints, action)
        tail = ", within these limits:" if limits else "."
        click.echo(f"Allowed: {client_id} may {action} {category} {what}{tail}")
        for line in limits:
            click.echo(f"  {line}")
    click.echo(f"Why: {d.reason}")


# -- access log ---------------------------------------------------------------------------


@cli.group("audit", cls=PdsGroup)
def audit_() -> None:
    """The access log: who read what, when, under which grant; signed and verifiable."""


def _entry_line(index: int, text: str) -> str:
    e = json.loads(text)
    what = " ".join(
        f"{k}={e[k]}" for k in ("client", "grant", "category", "count", "purpose") if k in e
    )
    return f"{index:>7}  {e['time']}  {e['actor']:<20}  {e['action']:<18} {e['decision']:<8} {what}"


@audit_.command("tail")
@click.option("-n", "count", default=20, show_default=True, type=WholeNumber(1))
@json_option
@with_vault
def audit_tail(v: Vault, count: int, as_json: bool) -> None:
    """Show the newest entries of the access log."""
    rows = v.log.tail(count)
    if as_json:
        emit([{"index": i, **json.loads(text)} for i, text in rows])
        return
    if not rows:
        click.echo("The access log is empty.")
    for index, text in rows:
        click.echo(_entry_line(index, text))


@audit_.command("summary")
@click.option("--since", callback=_day, help="From this date (YYYY-MM-DD).")
@click.option("--until", callback=_day, help="Up to this date (YYYY-MM-DD), inclusive.")
@json_option
@with_vault
def audit_summary(v: Vault, since: date | None, until: date | None, as_json: bool) -> None:
    """Who accessed what: entries and records per day, client, category and decision."""
    rows = v.log.summary(
        since=since.isoformat() if since else None,
        until=(until + timedelta(days=1)).isoformat() if until else None,
    )
    if as_json:
        emit(rows)
        return
    if not rows:
        click.echo("No access in that period.")
        return
    click.echo(
        f"{'day':<10}  {'client':<24}  {'category':<12}  {'action':<18} {'decision':<8}"
        f" {'entries':>7} {'records':>8}"
    )
    for r in rows:
        click.echo(
            f"{r['day']:<10}  {r['client'] or '(owner)':<24}  {r['category'] or '-':<12}  "
            f"{r['action']:<18} {r['decision']:<8} {r['entries']:>7} {r['records']:>8}"
        )


@audit_.command("checkpoint")
@json_option
@with_vault
def audit_checkpoint(v: Vault, as_json: bool) -> None:
    """Sign a checkpoint of the log now (if it grew) and print it, as a C2SP signed note."""
    cp = v.log.checkpoint()
    if as_json:
        emit({"size": cp.size, "created_at": cp.created_at, "checkpoint": cp.note})
    else:
        click.echo(cp.note, nl=False)


@audit_.command("key")
@with_vault
def audit_key(v: Vault) -> None:
    """Print the log's verifier key (give it to auditors: `pds audit verify --key`)."""
    click.echo(v.log_verifier_key())


@audit_.command("export")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@json_option
@with_vault
def audit_export(v: Vault, path: Path, as_json: bool) -> None:
    """Write the whole log to PATH for an auditor: entries, signed checkpoints, public key."""
    from pds.audit.verify import write_bundle

    if path.exists():
        fail(f"{path} already exists", "Choose a new file name; pds never overwrites.")
    v.audit("audit.export", actor="owner")
    v.log.checkpoint()
    try:
        with path.open("xb") as out:
            n = write_bundle(out, v.log_source())
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}")
    if as_json:
        emit({"bundle": str(path), "entries": n})
    else:
        click.echo(f"Wrote {n} log entries and their signed checkpoints to {path}.")


@audit_.command("verify")
@click.option(
    "--bundle", type=click.Path(path_type=Path, dir_okay=False), help="An exported log bundle."
)
@click.option("--url", help="A running vault's base URL (with an auditor token).")
@click.option(
    "--token-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File holding the auditor's access token (or set PDS_AUDIT_TOKEN).",
)
@click.option("--key", "key", help="The verifier key to trust (from `pds audit key`).")
@click.option(
    "--trusted-checkpoint",
    "trusted",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A checkpoint you saved earlier; the log must extend it. Repeatable.",
)
@click.option(
    "--save-checkpoint",
    type=click.Path(path_type=Path, dir_okay=False),
    help="After success, save the newest checkpoint here (use it as --trusted-checkpoint).",
)
@json_option
def audit_verify(
    bundle: Path | None,
    url: str | None,
    token_file: Path | None,
    key: str | None,
    trusted: tuple[Path, ...],
    save_checkpoint: Path | None,
    as_json: bool,
) -> None:
    """Check the whole log offline: every entry, every signature, every saved checkpoint.

    Reads the vault in PDS_HOME (with its passphrase), or an exported --bundle, or a running
    vault's --url with an auditor token. Exit status 0 only when everything holds.
    """
    from pds.audit import verify as verifymod

    if bundle and url:
        fail("give either --bundle or --url, not both")
    notes: list[bytes] = []
    for p in trusted:  # as bytes: a signed note is checked byte for byte (no newline mapping)
        try:
            notes.append(p.read_bytes())
        except OSError as exc:
            fail(f"cannot read the trusted checkpoint {p}: {exc.strerror}")
    if key and Path(key).is_file():
        key = Path(key).read_text(encoding="utf-8").strip()
    if bundle:
        report = verifymod.verify(verifymod.BundleSource(bundle), trusted=notes, key=key)
    elif url:
        from pds.audit.remote import RemoteSource, read_token

        source = RemoteSource(url, read_token(token_file))
        report = verifymod.verify(source, trusted=notes, key=key)
    else:
        with open_vault() as v:
            report = verifymod.verify(v.log_source(), trusted=notes, key=key)
    if report.ok and save_checkpoint and report.newest_note:
        save_checkpoint.write_bytes(report.newest_note.encode("utf-8"))
    if as_json:
        emit(report.as_dict())
    else:
        for line in verifymod.describe(report):
            click.echo(line)
    if not report.ok:
        first = report.first_bad_index
        where = f"; first bad entry: {first}" if first is not None else ""
        fail(f"the access log did not verify ({plural(len(report.problems), 'problem')}{where})")


# -- serving and demo ----------------------------------------------------------------------


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=WholeNumber(1, 65535))
@click.option("--workers", default=2, show_default=True, type=WholeNumber(1, 64))
@click.option(
    "--threads",
    default=1,
    show_default=True,
    type=WholeNumber(1, 64),
    help="Request threads per worker; more than 1 lets their access-log writes share one "
    "disk sync (for a slow disk).",
)
@click.option(
    "--timeout",
    default=60,
    show_default=True,
    type=WholeNumber(1, 3600),
    help="Seconds a stuck worker is given before it is restarted (uploads may take longer).",
)
def serve(host: str, port: int, workers: int, threads: int, timeout: int) -> None:
    """Serve the web app and APIs (unlocks the vault once, before the workers start).

    The issuer is PDS_ISSUER, or without it http://HOST:PORT on a loopback HOST. A vault of
    an older pds is first backed up into PDS_HOME/backups/ and upgraded (`pds upgrade`).
    """
    from pds import vault as vaultmod
    from pds.http.server import check_listen, issuer_for, run, served_url
    from pds.vault.upgrade import upgrade as upgrade_vault

    settings = get_settings()
    settings = settings.with_overrides(issuer=issuer_for(settings, host, port))
    check_listen(host, port)
    if vaultmod.exists(settings):  # a vault of an older pds: backed up before it migrates
        done = upgrade_vault(settings)
        if done.upgraded:
            _say_upgraded(done)
    with open_vault(settings) as v:
        keyring = v.keyring
    click.echo(f"Serving on {served_url(host, port)}  (Ctrl-C stops it)")
    click.echo(f"Issuer: {settings.issuer}")
    sys.stdout.flush()
    run(settings, keyring, host=host, port=port, workers=workers, threads=threads, timeout=timeout)


@cli.command()
@allow_weak_option
@json_option
def demo(allow_weak: bool, as_json: bool) -> None:
    """Create a demo vault with sample data in PDS_HOME (on first run), then say how to use it."""
    from pds import vault as vaultmod
    from pds.demo import load_demo
    from pds.vault.passphrase import require_strong

    settings = get_settings()
    passphrase = ask_passphrase(settings)
    created = not vaultmod.exists(settings)
    if created:
        require_strong(passphrase, allow_weak=allow_weak)
    v = Vault.create(settings, passphrase) if created else Vault.open(settings, passphrase)
    with v:
        summaries = load_demo(v)
        st = v.status()
    if as_json:
        emit({"home": st["home"], "created": created, "records": st["records"]})
        return
    verb = "Created" if created else "Using"
    click.echo(f"{verb} the demo vault at {st['home']}: {plural(st['records'], 'record')}.")
    for s in summaries:
        click.echo(f"  {s.file}: {s.new} new, {s.duplicate} already present")


def main() -> None:
    cli(prog_name="pds")


# -- clients and grants


@cli.group()
def clients() -> None:
    """Businesses that may ask for your data (OAuth clients)."""


@clients.command("add")
@click.option("--name", required=True, help="The business's name, as the consent page shows it.")
@click.option(
    "--redirect-uri",
    "redirect_uris",
    multiple=True,
    required=True,
    help="Where it receives codes (exact URL; https, or http on loopback). Repeatable.",
)
@click.option("--public", is_flag=True, help="It cannot keep a secret (a phone or browser app).")
@json_option
@with_vault
def clients_add(
    v: Vault, name: str, redirect_uris: tuple[str, ...], public: bool, as_json: bool
) -> None:
    """Register a business; a confidential client's secret is shown once."""
    from pds.oauth import admin

    client, secret = admin.add_client(v, name, list(redirect_uris), public=public)
    if as_json:
        emit({"client_id": client.client_id, "client_secret": secret})
        return
    kind = "public" if public else "confidential"
    click.echo(f'Added client "{client.name}" ({kind}).')
    click.echo(f"client_id:     {client.client_id}")
    if secret:
        click.echo(f"client_secret: {secret}")
        click.echo("The secret is shown only now: pds keeps only its hash.")


@clients.command("list")
@json_option
@with_vault
def clients_list(v: Vault, as_json: bool) -> None:
    """List the registered businesses."""
    from pds.oauth import admin

    items = [c.as_dict() for c in admin.list_clients(v)]
    if as_json:
        emit(items)
        return
    if not items:
        click.echo("No clients yet: add one with `pds clients add`.")
    for c in items:
        flags = ("public" if c["public"] else "confidential") + (
            "" if c["verified"] else ", unverified"
        )
        flags += f", removed {c['removed_at']}" if c["removed_at"] else ""
        click.echo(f"{c['client_id']}  {c['name']} ({flags})  {' '.join(c['redirect_uris'])}")


@cli.group()
def grants() -> None:
    """What you let businesses see, and for how long."""


@grants.command("list")
@click.option("--all", "include_all", is_flag=True, help="Also revoked and expired grants.")
@json_option
@with_vault
def grants_list(v: Vault, include_all: bool, as_json: bool) -> None:
    """List grants (active ones unless --all)."""
    from pds.oauth import admin

    names = {c.client_id: c.name for c in admin.list_clients(v)}
    items = [g.as_dict() for g in admin.list_grants(v, include_inactive=include_all)]
    if as_json:
        emit(items)
        return
    if not items:
        click.echo("No active grants.")
    for g in items:
        status = f"revoked {g['revoked_at']}" if g["revoked_at"] else f"until {g['expires_at']}"
        click.echo(
            f"{g['id']:>4}  {names.get(g['client_id'], g['client_id'])}  {g['scope']}  "
            f"purpose: {g['purpose'] or 'none stated'}  {status}"
        )


@grants.command("revoke")
@click.argument("grant_id", type=WholeNumber(1))
@click.option("--request-erasure", is_flag=True, help="Also start an Art. 17 erasure request.")
@json_option
@with_vault
def grants_revoke(v: Vault, grant_id: int, request_erasure: bool, as_json: bool) -> None:
    """Revoke a grant: its tokens stop working on their next call."""
    from pds.oauth import admin
    from pds.rights.requests import erasure_for_grant

    g = admin.revoke_grant(v, grant_id)
    erasure = erasure_for_grant(v, g.id) if request_erasure else None
    if as_json:
        extra = {"erasure_request": erasure.id} if erasure else {}
        emit({"id": g.id, "revoked_at": g.revoked_at, **extra})
    else:
        click.echo(f"Revoked grant {g.id}; its tokens no longer work.")
        if erasure:
            click.echo(f"Erasure request {erasure.id} started: `pds requests show {erasure.id}`.")


# -- commands that live beside their features (each module's register(cli) adds its own) ----
from pds.cli.rights import register as _register_requests  # noqa: E402

_register_requests(cli)
from pds.cli.receipts import register as _register_receipts  # noqa: E402

_register_receipts(cli)
from pds.cli.profile import register as _register_profile  # noqa: E402

_register_profile(cli)
from pds.cli.client_commands import register as _register_clients  # noqa: E402

_register_clients(clients)
