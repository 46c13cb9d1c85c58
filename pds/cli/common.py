"""What every ``pds`` command shares: errors as one line, ``--json``, the settings, the vault.

Every command that prints data also takes ``--json`` (one JSON document on stdout, nothing
else there). Errors go to stderr as one ``Error: ...`` line (and a ``Hint: ...`` line when
there is something to do) with exit status 1; usage mistakes exit 2 as click does.

``LazyGroup`` is click's documented lazy-loading group: it maps a command's name to the
``module.attribute`` that defines it and imports that module only when the command is asked
for, so ``pds status`` loads the vault's code and not the OAuth server's.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable
from datetime import date
from functools import wraps
from typing import TYPE_CHECKING, Any

import click

from pds.errors import ConfigError, PdsError, VaultBusy
from pds.numbers import SQLITE_MAX, shown, whole
from pds.settings import Settings

if TYPE_CHECKING:
    from pds.vault import Vault
    from pds.vault.upgrade import Upgrade

EXIT_ERROR = 1
EXIT_INTERNAL = 70


def report(message: str, hint: str | None = None) -> None:
    """Print ``Error: message`` (and ``Hint: hint``) to stderr, and go on (a command that
    carries on past one failed item, then exits 1 itself)."""
    click.echo(f"Error: {message}", err=True)
    if hint:
        click.echo(f"Hint: {hint}", err=True)


def fail(message: str, hint: str | None = None) -> None:
    """Print ``Error: message`` (and ``Hint: hint``) to stderr and exit with status 1."""
    report(message, hint)
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
            from pds.db.locking import is_busy  # here: `pds --help` need not load pds.db

            if is_busy(exc):  # SQLite's own "database is locked", outside pds.db.locking
                busy = VaultBusy()
                fail(busy.message, busy.hint)
            report(
                f"pds failed unexpectedly ({type(exc).__name__}: {exc})",
                "this is a bug in pds; please report it with the command.",
            )
            sys.exit(EXIT_INTERNAL)


class LazyGroup(PdsGroup):
    """A ``PdsGroup`` whose commands are imported when first asked for (click's lazy group).

    ``lazy_subcommands`` maps a command name to ``"module.attribute"``; the help lists them
    with the other commands, sorted by name as click sorts its own.
    """

    def __init__(
        self, *args: Any, lazy_subcommands: dict[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = lazy_subcommands or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_subcommands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_subcommands:
            return self._lazy_load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def _lazy_load(self, cmd_name: str) -> click.Command:
        module_name, attribute = self.lazy_subcommands[cmd_name].rsplit(".", 1)
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}.{attribute} is not a click command")
        return command


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def emit(data: Any) -> None:
    """Print ``data`` as one indented JSON document."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def json_option(f: Callable) -> Callable:
    """The ``--json`` flag, passed to the command as ``as_json``."""
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")(f)


def get_settings() -> Settings:
    """The settings the root command loaded for this run."""
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
    """Open and unlock the vault in PDS_HOME (the caller closes it)."""
    from pds import vault as vaultmod

    settings = settings or get_settings()
    vaultmod.require(settings)
    return vaultmod.Vault.open(settings, ask_passphrase(settings))


def with_vault(f: Callable) -> Callable:
    """Open and unlock the vault for the command, and close it afterwards."""

    @wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with open_vault() as v:
            return f(v, *args, **kwargs)

    return wrapper


class WholeNumber(click.ParamType):
    """A click type for ids, counts and limits: ASCII digits from ``lo`` to ``hi``.

    ``click.INT`` would hand a 5000-digit value to ``int()`` (Python's own message) and a
    20-digit one on to SQLite (an OverflowError); this says what is allowed.
    """

    name = "integer"

    def __init__(self, lo: int = 0, hi: int = SQLITE_MAX) -> None:
        self.lo, self.hi = lo, hi

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number: int | None = value if self.lo <= value <= self.hi else None
        else:
            number = whole(str(value).strip(), self.lo, self.hi)
        if number is None:
            self.fail(
                f"{shown(str(value))} is not a whole number from {self.lo} to {self.hi}",
                param,
                ctx,
            )
        return number  # type: ignore[return-value]


def day_option(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    """Callback of ``--since`` and ``--until``: a date like 2024-03-31, ``--until`` not first."""
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


def category_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Callback of ``--category``: one of the vocabulary's categories."""
    from pds.vocabulary import CATEGORIES

    if value is not None and value not in CATEGORIES:
        raise click.BadParameter(f'"{value}" is not a category; use one of {", ".join(CATEGORIES)}')
    return value


def say_upgraded(done: Upgrade) -> None:
    """Tell the owner where the backup went and which schema the vault is at now."""
    click.echo(f"Backed up the vault as it was (schema {done.schema_before}) to {done.backup}.")
    click.echo(
        f"Upgraded the vault at {done.home} from schema {done.schema_before} to {done.schema}."
    )
    if done.reindex:
        click.echo(
            "Its records are indexed for search at the next unlock, once: about 4 seconds "
            "per 100,000 records, with nothing printed meanwhile."
        )
