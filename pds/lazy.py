"""Modules loaded on first use, so that `pds --help` and every command start fast.

The CLI registers the commands of every feature at start-up; their modules import what
they work with (the OAuth server, JOSE, marshmallow schemas), which is most of a second's
import time that a command such as `pds status` never needs. ``lazy_module`` returns the
module object at once and runs its code on the first attribute access
(``importlib.util.LazyLoader``, the standard library's own mechanism).
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """``name`` if already imported, else a module that imports itself when first used."""
    found = sys.modules.get(name)
    if found is not None:
        return found
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
