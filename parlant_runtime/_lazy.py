"""Lazy package exports: a package's names imported when first used, not with the package.

``import parlant_runtime`` would otherwise import every layer (the validator and
networkx, the diagram renderers, the engine, the template sandbox) although a command
or an embedding uses a few. A package that uses this helper writes its re-exports as
usual, inside ``if TYPE_CHECKING:`` (what type checkers, editors and readers see),
and ends with::

    if not TYPE_CHECKING:
        __getattr__, __dir__ = lazy_exports(__name__)

On the first access to a name that is not yet set, the package's module-level
``__getattr__`` (PEP 562) reads where the name comes from out of that block
(``from parlant_runtime.x import Name``, parsed once from the package's source),
imports that module, sets the name on the package (later accesses are plain
attribute reads) and returns it. A name that is not in the block but is a
submodule of the package is imported as one, as ``import package.name`` would.
``computed`` adds names whose value a function gives (``__version__``).

The block stays the one list of what the package exports: whatever ``__all__`` and
the imports say, the lazy attributes follow (tests/test_lazy_imports.py checks that
every name in ``__all__`` resolves).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

Getattr = Callable[[str], Any]
Dir = Callable[[], list[str]]


def lazy_exports(
    package: str, computed: Mapping[str, Callable[[], Any]] | None = None
) -> tuple[Getattr, Dir]:
    """``__getattr__`` and ``__dir__`` for ``package`` (see the module docstring)."""
    module = sys.modules[package]
    extra = dict(computed or {})
    table: dict[str, tuple[str, str]] = {}
    read = False

    def origins() -> dict[str, tuple[str, str]]:
        nonlocal read
        if not read:
            table.update(type_checking_imports(module))
            read = True
        return table

    def __getattr__(name: str) -> Any:  # the PEP 562 hook's own name
        if name in extra:
            value = extra[name]()
        elif name in origins():
            source, original = table[name]
            value = getattr(importlib.import_module(source), original)
        elif not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}"):
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(module, name, value)
        return value

    def __dir__() -> list[str]:
        # what the package offers: its exports, dunders and the submodules loaded so far
        # (not the helpers of its own source, such as TYPE_CHECKING)
        loaded = {k for k, v in vars(module).items() if isinstance(v, ModuleType)}
        dunders = {k for k in vars(module) if k.startswith("__")}
        return sorted({*origins(), *extra, *loaded, *dunders})

    return __getattr__, __dir__


def type_checking_imports(module: ModuleType) -> dict[str, tuple[str, str]]:
    """Each name that ``module``'s top-level ``if TYPE_CHECKING:`` block imports with
    ``from <absolute module> import <name> [as <alias>]``: alias -> (module, name)."""
    spec = module.__spec__
    loader = spec.loader if spec is not None else None
    get_source = getattr(loader, "get_source", None)
    source = get_source(module.__name__) if get_source is not None else None
    if source is None:
        raise ImportError(
            f"{module.__name__} exports its names lazily and needs its source to find them; "
            "install the package from a wheel or a source tree, not as compiled files only"
        )
    found: dict[str, tuple[str, str]] = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.If) and _is_type_checking(node.test)):
            continue
        for statement in node.body:
            if isinstance(statement, ast.ImportFrom) and statement.level == 0 and statement.module:
                for alias in statement.names:
                    found[alias.asname or alias.name] = (statement.module, alias.name)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
