"""The layout's rules that import-linter does not check (``lint-imports`` checks the layers,
the forbidden imports and cycles between sibling packages; see pyproject.toml):

- every top-level module is in exactly one layer, and the contracts' hand-written lists of
  source modules name the layers they should;
- no import cycle between any two modules, a package and its own modules included;
- only ``pds.db`` speaks SQL: nothing else touches ``execute``/``executemany``/
  ``executescript`` (a call or a bare reference) or calls ``query``/``table``;
- the submodules import-linter cannot name (it takes only the top package of an outside one):
  ``authlib.integrations`` only where Flask is allowed, no ``urllib.request`` or
  ``http.client`` in the pure packages;
- a module over 500 lines says why in its docstring (a sentence starting "Longer than").

Each failure lists every offence, with what to do about it.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path
from typing import Any

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
ROOTS = ("pds", "connectors")
SQL_NAMES = {"execute", "executemany", "executescript"}
SQL_CALLS = {"query", "table"}  # sqlite_utils.Database's
MAX_LINES = 500
OUTSIDE_SUBMODULES = {
    # submodule: (the contract whose source modules must not import it, what to do instead)
    "authlib.integrations": (
        "flask",
        "it is authlib's Flask glue: use it in pds.http, or in pds.oauth.server",
    ),
    "urllib.request": ("pure-io", "fetch in the caller (a service) and pass the bytes in"),
    "http.client": ("pure-io", "fetch in the caller (a service) and pass the bytes in"),
}


def _fail(problems: list[str], heading: str) -> None:
    """Fail with every problem on its own line (pytest.fail does not shorten its message)."""
    if problems:
        pytest.fail(f"{heading}\n" + "\n".join(f"  {p}" for p in problems), pytrace=False)


def _modules() -> dict[str, Path]:
    found = {}
    for top in ROOTS:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


# -- every module in a layer; the contracts' lists follow the layers -------------------------


def _config() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["tool"]["importlinter"]


def _contract(config: dict[str, Any], contract_id: str) -> dict[str, Any]:
    (found,) = [c for c in config["contracts"] if c["id"] == contract_id]
    return found


def _layers(config: dict[str, Any]) -> list[list[str]]:
    """The layers contract's layers, top first, each as the list of its modules."""
    return [
        [name.strip() for name in re.split(r"[|:]", layer)]
        for layer in _contract(config, "layers")["layers"]
    ]


def _top_level_modules() -> set[str]:
    """``connectors``, and every module and package directly in ``pds``."""
    found = {"connectors"}
    for path in (ROOT / "pds").iterdir():
        if path.suffix == ".py" and path.name != "__init__.py":
            found.add(f"pds.{path.stem}")
        elif path.is_dir() and (path / "__init__.py").exists():
            found.add(f"pds.{path.name}")
    return found


def test_every_top_level_module_is_in_exactly_one_layer() -> None:
    layers = _layers(_config())
    listed = [name for layer in layers for name in layer]
    problems = [
        f"{name} is in no layer, so no contract checks it: add it to the layer it belongs in "
        "(docs/architecture.md) in pyproject.toml's layers contract, and to the "
        "source_modules of the contracts that list every layer (click, flask, sqlite-utils)"
        for name in sorted(_top_level_modules() - set(listed))
    ]
    problems += [
        f"{name} is in {listed.count(name)} layers: keep it in the one it belongs in"
        for name in sorted(set(listed))
        if listed.count(name) > 1
    ]
    problems += [
        f"{name} is in a layer but is not a top-level module of pds: remove it, or name the "
        "module it became"
        for name in sorted(set(listed) - _top_level_modules())
    ]
    _fail(problems, "pyproject.toml's layers contract does not hold each module once:")


@pytest.mark.parametrize(
    ("contract_id", "expected"),
    [
        ("click", "every layer below pds.cli"),
        ("flask", "pds.cli and every layer below pds.http"),
        ("sqlite-utils", "every layer but pds.db"),
    ],
)
def test_a_contract_lists_every_layer_it_should(contract_id: str, expected: str) -> None:
    config = _config()
    layers = _layers(config)
    names = [name for layer in layers for name in layer]
    below = {
        "click": names[names.index("pds.cli") + 1 :],
        "flask": ["pds.cli", *names[names.index("pds.http") + 1 :]],
        "sqlite-utils": [name for name in names if name != "pds.db"],
    }[contract_id]
    sources = _contract(config, contract_id)["source_modules"]
    problems = [
        f"{name} is missing: add it to source_modules" for name in below if name not in sources
    ]
    problems += [
        f"{name} should not be there: remove it from source_modules"
        for name in sources
        if name not in below
    ]
    _fail(
        problems,
        f"the {contract_id} contract's source_modules in pyproject.toml must be {expected}:",
    )


# -- no cycle between any two modules --------------------------------------------------------


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _loop(edges: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest way round ``component`` (a cycle of modules) from its first module."""
    start = component[0]
    inside = set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(edges.get(node, ())):
            if child == start:
                return [*paths[node], start]
            if child in inside and child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    raise AssertionError(f"{component} is not a cycle")


def test_cycle_finder_finds_a_cycle_and_only_cycles() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(edges) == [["a", "b", "c"]]
    assert _loop(edges, ["a", "b", "c"]) == ["a", "b", "c", "a"]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_round_a_circle() -> None:
    graph = grimp.build_graph(*ROOTS)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    problems = []
    for component in _cycles(edges):
        loop = _loop(edges, component)
        also = sorted(set(component) - set(loop))
        problems.append(
            f"import cycle: {' -> '.join(loop)}"
            + (f" (tied in the same knot: {', '.join(also)})" if also else "")
            + "; break it by moving what one needs from the other into itself or into a "
            "module both may import, or by passing it in (a parameter, a callback)"
        )
    _fail(
        problems,
        "modules import each other round a circle (imports inside functions count too):",
    )


# -- only pds.db speaks SQL ------------------------------------------------------------------


def _sql_uses(source: str) -> list[tuple[int, str]]:
    """``(line, what)`` for each reference to an SQL method: ``x.execute`` called or not
    (``run = conn.execute`` runs SQL as well), ``getattr(x, "execute")``, and a call of
    ``x.query(...)`` or ``x.table(...)`` (sqlite_utils; ``parts.query`` is a URL's)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in SQL_NAMES:
            found.append((node.lineno, f".{node.attr}"))
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in SQL_CALLS:
                found.append((node.lineno, f".{func.attr}(...)"))
            elif (
                isinstance(func, ast.Name)
                and func.id == "getattr"
                and len(node.args) > 1
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value in SQL_NAMES | SQL_CALLS
            ):
                found.append((node.lineno, f"getattr(..., {node.args[1].value!r})"))
    return sorted(found)


def test_the_sql_check_sees_every_way_to_run_sql() -> None:
    source = (
        "conn.execute('x')\n"
        "run = conn.executemany\n"
        "db.query('select 1')\n"
        "db.table('records').count\n"
        "getattr(conn, 'executescript')('x')\n"
        "parts.query\n"
    )
    assert _sql_uses(source) == [
        (1, ".execute"),
        (2, ".executemany"),
        (3, ".query(...)"),
        (4, ".table(...)"),
        (5, "getattr(..., 'executescript')"),
    ]
    assert _sql_uses(_modules()["pds.db"].read_text(encoding="utf-8")) != []


def test_only_the_db_package_speaks_sql() -> None:
    problems = [
        f"SQL outside pds.db at {_where(path, line)} ({what}): call a pds.db function "
        "(add one to the pds.db module of that table), with the connection as an argument"
        for name, path in _modules().items()
        if not _in(name, "pds.db")
        for line, what in _sql_uses(path.read_text(encoding="utf-8"))
    ]
    _fail(problems, "only pds.db speaks SQL:")


# -- the outside submodules import-linter cannot name ----------------------------------------


def _imports(source: str) -> list[tuple[int, str]]:
    """``(line, module)`` for every absolute import; ``from a import b`` gives ``a.b``
    (``b`` may be a submodule)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def test_the_import_check_sees_a_submodule_however_it_is_imported() -> None:
    source = (
        "import urllib.request\n"
        "from http import client\n"
        "def f():\n"
        "    from authlib.integrations.flask_oauth2 import AuthorizationServer\n"
    )
    assert _imports(source) == [
        (1, "urllib.request"),
        (2, "http.client"),
        (4, "authlib.integrations.flask_oauth2.AuthorizationServer"),
    ]


def test_no_outside_submodule_where_its_contract_forbids_it() -> None:
    config = _config()
    problems = []
    for name, path in _modules().items():
        for line, imported in _imports(path.read_text(encoding="utf-8")):
            for submodule, (contract_id, todo) in OUTSIDE_SUBMODULES.items():
                contract = _contract(config, contract_id)
                ignored = {
                    rule.split("->")[0].strip() for rule in contract.get("ignore_imports", [])
                }
                if (
                    _in(imported, submodule)
                    and any(_in(name, source) for source in contract["source_modules"])
                    and name not in ignored
                ):
                    problems.append(
                        f"{_where(path, line)} imports {imported}, which the {contract_id} "
                        f"contract keeps out of {name}: {todo}"
                    )
    _fail(sorted(set(problems)), "an outside submodule is imported where it must not be:")


# -- long modules ----------------------------------------------------------------------------


def test_a_long_module_says_why() -> None:
    problems = []
    for name, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > MAX_LINES and "Longer than" not in (ast.get_docstring(ast.parse(text)) or ""):
            problems.append(
                f"{name} ({path.relative_to(ROOT)}) has {lines} lines: split it, or say why "
                f'in its docstring in a sentence starting "Longer than {MAX_LINES} lines"'
            )
    _fail(problems, f"a module over {MAX_LINES} lines must say why:")
