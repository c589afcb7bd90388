"""Start-up: importing the package loads only what is used (parlant_runtime/_lazy.py).

The time it saves is measured in benchmarks/bench_startup.py; these tests check the
structure that saves it: which modules an import leaves out of ``sys.modules``.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import types

import pytest

import parlant_runtime
from parlant_runtime._lazy import lazy_exports, type_checking_imports

LAZY_PACKAGES = (
    "parlant_runtime",
    "parlant_runtime.diagram",
    "parlant_runtime.engine",
    "parlant_runtime.validation",
)

UNUSED_BY_EMBEDDING = (
    "networkx",  # test generation only
    "parlant_runtime.validation.validator",
    "parlant_runtime.diagram",
    "parlant_runtime.llm",
    "parlant_runtime.testing",
    "parlant_runtime.cli",
    "click",
)


def loaded_after(code: str) -> set[str]:
    """The modules in ``sys.modules`` after ``code`` runs in a fresh interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.subprocess
def test_importing_the_package_loads_no_layer() -> None:
    loaded = loaded_after("import parlant_runtime")
    ours = {name for name in loaded if name.startswith("parlant_runtime")}
    assert ours == {"parlant_runtime", "parlant_runtime._lazy"}
    heavy = {"networkx", "jinja2", "jinja2.sandbox", "pydantic", "jsonschema", "importlib.metadata"}
    assert not heavy & loaded


@pytest.mark.subprocess
def test_the_embedding_api_loads_no_validator_diagram_llm_or_cli() -> None:
    loaded = loaded_after(
        "from parlant_runtime import Runtime, MemoryStore, bundle_from_data, load_bundle\n"
        "from parlant_runtime.storage.sql.store import SqlStore"
    )
    assert "parlant_runtime.engine.runtime" in loaded  # what was asked for did load
    assert not set(UNUSED_BY_EMBEDDING) & loaded


@pytest.mark.subprocess
def test_validating_loads_the_validator_and_no_graph_library() -> None:
    loaded = loaded_after("from parlant_runtime import validate_bundle")
    assert "parlant_runtime.validation.validator" in loaded
    assert "networkx" not in loaded  # the journey graph is plain dicts


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_all_is_exactly_the_type_checking_imports_and_each_resolves(package: str) -> None:
    module = importlib.import_module(package)
    imported = set(type_checking_imports(module))
    exported = set(module.__all__) - {"__version__"}
    assert exported == imported
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    assert set(module.__all__) <= set(dir(module))


def test_a_lazy_name_is_its_origin_and_is_then_a_plain_attribute() -> None:
    from parlant_runtime.engine.runtime import Runtime

    assert parlant_runtime.Runtime is Runtime
    assert "Runtime" in vars(parlant_runtime)  # set on first use: no hook on later reads


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="'parlant_runtime' has no attribute 'Nope'"):
        getattr(parlant_runtime, "Nope")  # noqa: B009  # the attribute access under test
    with pytest.raises(ImportError, match="cannot import name 'Nope'"):
        exec("from parlant_runtime import Nope")


@pytest.mark.subprocess
def test_a_submodule_not_yet_imported_is_reached_as_an_attribute() -> None:
    loaded = loaded_after(
        "import sys, types, parlant_runtime\n"
        "assert 'parlant_runtime.telemetry' not in sys.modules\n"
        "assert isinstance(parlant_runtime.telemetry, types.ModuleType)\n"
        "assert parlant_runtime.telemetry is sys.modules['parlant_runtime.telemetry']"
    )
    assert "parlant_runtime.telemetry" in loaded


def test_computed_names_are_computed_once() -> None:
    calls: list[int] = []

    def answer() -> int:
        calls.append(1)
        return 42

    module = types.ModuleType("lazy_probe")
    module.__spec__ = None
    sys.modules["lazy_probe"] = module
    try:
        getattr_, _ = lazy_exports("lazy_probe", {"answer": answer})
        module.__getattr__ = getattr_  # type: ignore[method-assign]
        assert module.answer == 42
        assert module.answer == 42
        assert calls == [1]
    finally:
        del sys.modules["lazy_probe"]


def test_a_package_without_source_says_what_to_do() -> None:
    module = types.ModuleType("lazy_no_source")
    module.__spec__ = None
    with pytest.raises(ImportError, match="needs its source"):
        type_checking_imports(module)
