"""The public surface: ``parlant_runtime.__all__`` is the whole API, sorted, documented,
importable without a database driver, listed on ``docs/api.md``; no name is defined twice."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

import parlant_runtime

PACKAGE = Path(parlant_runtime.__file__).parent
API_PAGE = PACKAGE.parent / "docs" / "api.md"
SUBMODULES = {
    "bundle",
    "cli",
    "diagram",
    "engine",
    "errors",
    "llm",
    "model",
    "sandbox",
    "storage",
    "telemetry",
    "testing",
    "validation",
}
# names whose import needs SQLAlchemy (and Alembic): imported when first used
LAZY = {"AdoptionRefused", "AdoptionReport", "SqlStore", "adopt", "database_url", "upgrade"}


def isort_style(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions (and ``__version__``), each alphabetical."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_without_repeats() -> None:
    exported = parlant_runtime.__all__
    assert exported == sorted(exported, key=isort_style)
    assert len(set(exported)) == len(exported)


def test_every_exported_name_is_importable_from_the_root() -> None:
    namespace: dict[str, object] = {}
    exec("from parlant_runtime import *", namespace)
    assert set(parlant_runtime.__all__) <= set(namespace)
    for name in parlant_runtime.__all__:
        assert getattr(parlant_runtime, name) is namespace[name]


def test_the_root_has_no_public_name_outside_all() -> None:
    public = {name for name in dir(parlant_runtime) if not name.startswith("_")}
    assert public - set(parlant_runtime.__all__) <= SUBMODULES
    assert public >= LAZY  # dir() lists the names imported on first use too


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'SQLStore'"):
        getattr(parlant_runtime, "SQLStore")  # noqa: B009  # mypy rejects the plain access


def test_every_exported_name_has_a_docstring_of_its_own() -> None:
    for name in parlant_runtime.__all__:
        if name == "__version__":
            continue
        value = getattr(parlant_runtime, name)
        assert inspect.isclass(value) or inspect.isfunction(value), name
        assert (value.__doc__ or "").strip(), f"{name} has no docstring"


def test_every_error_is_exported_with_its_root() -> None:
    errors = [
        getattr(parlant_runtime, name)
        for name in parlant_runtime.__all__
        if isinstance(getattr(parlant_runtime, name), type)
        and issubclass(getattr(parlant_runtime, name), BaseException)
    ]
    assert len(errors) >= 15
    for error in errors:
        assert issubclass(error, parlant_runtime.ParlantRuntimeError), error


def test_docs_api_lists_exactly_the_exported_names() -> None:
    page = API_PAGE.read_text(encoding="utf-8")
    listed = [line.split("`")[1] for line in page.splitlines() if line.startswith("- `")]
    names = [entry.split("(")[0].removeprefix("async ").split(" ")[-1] for entry in listed]
    assert sorted(names, key=isort_style) == parlant_runtime.__all__
    assert len(set(names)) == len(names)


def _definitions() -> dict[str, list[str]]:
    """Each public class and function defined at the top of a module: where."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", ".")
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            definition = ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
            if isinstance(node, definition) and not node.name.startswith("_"):
                found[node.name].append(module)
    return found


def test_no_public_name_is_defined_in_two_modules() -> None:
    # a click command is named after its command (``db upgrade`` is cli.db.upgrade), so
    # the command line's modules may reuse a name the library defines
    repeated = {
        name: modules
        for name, modules in _definitions().items()
        if len([m for m in modules if not m.startswith("cli.")]) > 1
        or len([m for m in modules if m.startswith("cli.")]) > 1
    }
    assert repeated == {}


def test_the_definitions_are_found() -> None:
    # the check above means something only if the walk reads the package
    found = _definitions()
    assert found["Runtime"] == ["engine.runtime"]
    assert found["upgrade"] == ["cli.db", "storage.migrate"]


@pytest.mark.subprocess
def test_the_core_imports_without_database_drivers() -> None:
    code = (
        "import sys\n"
        "sys.modules['asyncpg'] = None\n"
        "sys.modules['aiosqlite'] = None\n"
        "sys.modules['sqlalchemy'] = None\n"
        "sys.modules['alembic'] = None\n"
        "import parlant_runtime, parlant_runtime.cli\n"
        "from parlant_runtime import MemoryStore, Runtime, StorageError, DatabaseURLError\n"
        "assert 'sqlalchemy' not in [m.split('.')[0] for m in sys.modules if sys.modules[m]]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
