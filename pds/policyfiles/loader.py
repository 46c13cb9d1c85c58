"""Policy files on disk: shipped templates, the owner's own files, and which are in force.

The only I/O of ``pds.policy``. Templates ship in the ``pds_policies`` package (the
repository's ``policies/`` folder); the owner's own files are ``<PDS_HOME>/policies/*.toml``.
``<PDS_HOME>/policies/enabled.toml`` records the choice::

    enabled = ["default"]   # shipped templates in force (default: just "default")
    disabled = []           # own files left out (own files are in force unless listed)

A name means the owner's file when there is one, else the template: copy a template into
the folder under the same name to change it. :class:`PolicySet` loads the files in force
once and again whenever one of them changes; a broken file on reload leaves the previous
policies in force and says why.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pds_policies

from pds.numbers import TooManyDigits, toml_loads
from pds.policy.engine import RuleSet
from pds.policy.errors import PolicyError, UnknownPolicy
from pds.policy.rules import Rule
from pds.policyfiles.schema import RULE_ID, parse_policy

TEMPLATES = Path(pds_policies.__file__).resolve().parent
STATE_FILE = "enabled.toml"
DEFAULT_ENABLED = ("default",)


@dataclass(frozen=True, slots=True)
class PolicyFile:
    name: str
    path: Path
    origin: str  # "template" or "own"
    enabled: bool

    @property
    def label(self) -> str:
        return f"template {self.name}.toml" if self.origin == "template" else str(self.path)

    def title(self) -> str:
        """The file's first comment line (its one-line description), or ''."""
        try:
            with self.path.open(encoding="utf-8") as f:
                for line in f:
                    if line.startswith("#"):
                        return line.lstrip("#").strip()
                    if line.strip():
                        return ""
        except (OSError, UnicodeDecodeError):
            return ""
        return ""


@dataclass(frozen=True, slots=True)
class State:
    enabled: tuple[str, ...] = DEFAULT_ENABLED
    disabled: tuple[str, ...] = ()


def policy_dir(home: Path) -> Path:
    return home / "policies"


def read_file(path: Path, label: str | None = None) -> tuple[Rule, ...]:
    """The rules of one file; PolicyError names the file (as ``label``) and what is wrong."""
    label = label or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{label}: no such file", hint="Check the path.") from None
    except UnicodeDecodeError:
        raise PolicyError(f"{label}: not UTF-8 text") from None
    except OSError as exc:
        raise PolicyError(f"{label}: cannot be read ({exc.strerror})") from None
    return parse_policy(text, label)


def read_state(home: Path) -> State:
    path = policy_dir(home) / STATE_FILE
    try:
        doc = toml_loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return State()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, TooManyDigits) as exc:
        raise PolicyError(f"{path}: cannot be read ({exc})") from None
    for key in doc:
        if key not in ("enabled", "disabled"):
            raise PolicyError(f'{path}: unknown key "{key}"; it holds enabled = [...] only')
    lists = []
    for key, default in (("enabled", DEFAULT_ENABLED), ("disabled", ())):
        value = doc.get(key, list(default))
        if not isinstance(value, list) or not all(
            isinstance(v, str) and RULE_ID.match(v) for v in value
        ):
            raise PolicyError(f'{path}: "{key}" must be a list of policy names')
        lists.append(tuple(value))
    return State(*lists)


def write_state(home: Path, state: State) -> None:
    """Write enabled.toml atomically (a temp file renamed over it)."""
    folder = policy_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    text = (
        "# Which policies are in force; `pds policy enable/disable NAME` edits this file.\n"
        "# enabled: shipped templates in force. disabled: your own files left out.\n"
        f"enabled = {_toml_list(state.enabled)}\n"
        f"disabled = {_toml_list(state.disabled)}\n"
    )
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".enabled-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, folder / STATE_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _toml_list(names: Iterable[str]) -> str:
    return "[" + ", ".join(f'"{n}"' for n in names) + "]"


def _own_paths(home: Path) -> dict[str, Path]:
    folder = policy_dir(home)
    if not folder.is_dir():
        return {}
    return {
        p.stem: p
        for p in sorted(folder.glob("*.toml"))
        if p.name != STATE_FILE and RULE_ID.match(p.stem)
    }


def _template_paths(templates: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(templates.glob("*.toml"))}


def available(
    home: Path, state: State | None = None, templates: Path = TEMPLATES
) -> list[PolicyFile]:
    """Every policy file: the templates, then the owner's own (each shadowing a template of
    the same name); each with whether it is in force. Rules load in this order."""
    state = state or read_state(home)
    own = _own_paths(home)
    out = [
        PolicyFile(n, p, "template", n in state.enabled)
        for n, p in _template_paths(templates).items()
        if n not in own
    ]
    return out + [PolicyFile(n, p, "own", n not in state.disabled) for n, p in own.items()]


def find(home: Path, name: str, templates: Path = TEMPLATES) -> PolicyFile:
    for f in available(home, templates=templates):
        if f.name == name:
            return f
    raise UnknownPolicy(f'no policy named "{name}"')


def load_active(
    home: Path, state: State | None = None, templates: Path = TEMPLATES
) -> tuple[RuleSet, tuple[PolicyFile, ...]]:
    """The rules in force (all files' rules, ids unique across files) and their files."""
    # templates first: a clashing id is then blamed on the owner's (newer) file
    files = tuple(f for f in available(home, state, templates) if f.enabled)
    rules: list[Rule] = []
    owner: dict[str, str] = {}
    for f in files:
        for number, rule in enumerate(read_file(f.path, f.label), 1):
            if rule.id in owner:
                raise PolicyError(
                    f'{f.label}: rule "{rule.id}" (rule {number}): the id "{rule.id}" is '
                    f"already used in {owner[rule.id]}",
                    hint="Rule ids must be unique across the policies in force; rename one.",
                )
            owner[rule.id] = f.label
            rules.append(rule)
    return RuleSet(rules), files


def set_enabled(
    home: Path, name: str, on: bool, templates: Path = TEMPLATES
) -> tuple[PolicyFile, bool]:
    """Put a policy in force (or take it out); returns the file and whether anything changed.

    Enabling first loads everything that would then be in force, so a broken file or a
    clashing id is refused and nothing changes.
    """
    state = read_state(home)
    f = find(home, name, templates)
    enabled, disabled = list(state.enabled), list(state.disabled)
    if f.origin == "template":
        if on and name not in enabled:
            enabled.append(name)
        elif not on and name in enabled:
            enabled.remove(name)
    elif on and name in disabled:
        disabled.remove(name)
    elif not on and name not in disabled:
        disabled.append(name)
    new = State(tuple(enabled), tuple(disabled))
    if new == state:
        return f, False
    if on:
        load_active(home, new, templates)
    write_state(home, new)
    return PolicyFile(f.name, f.path, f.origin, on), True


def switch(
    home: Path, name: str, on: bool, audit: Callable[..., object], templates: Path = TEMPLATES
) -> tuple[PolicyFile, bool]:
    """The owner puts a policy in force (or takes it out): :func:`set_enabled`, then the
    ``policy.change`` entry through ``audit`` (the vault's ``Vault.audit``); if the entry
    cannot be written, the state is put back as it was, so no change goes unlogged."""
    before = read_state(home)
    f, changed = set_enabled(home, name, on, templates)
    if changed:
        try:
            audit(
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
    return f, changed


# -- the policies in force, reloaded when files change ---------------------------------------


Signature = tuple[tuple[str, int, int], ...]


def _signature(home: Path, templates: Path) -> Signature:
    """Name, mtime and size of every file that can matter: cheap (one scandir, few stats)."""
    out = []
    folder = policy_dir(home)
    try:
        with os.scandir(folder) as it:
            for e in it:
                if e.name.endswith(".toml"):
                    st = e.stat()
                    out.append((e.path, st.st_mtime_ns, st.st_size))
    except FileNotFoundError:
        pass
    for p in templates.glob("*.toml"):
        st = p.stat()
        out.append((str(p), st.st_mtime_ns, st.st_size))
    return tuple(sorted(out))


class PolicySet:
    """The rules in force for one vault, loaded once and re-loaded when the files change.

    The first load raises PolicyError (a server must not start on a broken policy). After
    that, :meth:`current` re-checks the files' names, sizes and mtimes (at most every
    ``check_every`` seconds) and re-loads when they changed. A broken file leaves the
    previous rules in force, sets :attr:`problem` to why, and calls ``report(message)``
    once per new problem; the next good load clears :attr:`problem`.
    """

    def __init__(
        self,
        home: Path,
        *,
        templates: Path = TEMPLATES,
        check_every: float = 0.0,
        report: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.home = home
        self.templates = templates
        self.check_every = check_every
        self.report = report
        self.clock = clock
        self.problem: str | None = None
        self._lock = threading.Lock()
        self._signature = _signature(home, templates)
        self.rules, self.files = load_active(home, templates=templates)
        self._checked = clock()

    def current(self) -> RuleSet:
        """The rules in force now (re-loaded first if a file changed)."""
        if self.clock() - self._checked >= self.check_every:
            self.refresh()
        return self.rules

    def refresh(self) -> bool:
        """Re-load if any file changed; True when new rules are now in force."""
        with self._lock:
            self._checked = self.clock()
            sig = _signature(self.home, self.templates)
            if sig == self._signature:
                return False
            self._signature = sig
            try:
                self.rules, self.files = load_active(self.home, templates=self.templates)
            except PolicyError as exc:
                message = f"{exc.message}; the previous policies stay in force"
                if message != self.problem and self.report is not None:
                    self.report(message)
                self.problem = message
                return False
            self.problem = None
            return True
