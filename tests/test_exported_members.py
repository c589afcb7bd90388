"""The public surface: everything users need is importable from ``parlant_runtime``."""

from __future__ import annotations

import subprocess
import sys

import pytest

import parlant_runtime


def test_all_is_sorted_and_complete() -> None:
    exported = parlant_runtime.__all__

    def isort_style(name: str) -> tuple[int, str]:  # constants, classes, then the rest
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert exported == sorted(exported, key=isort_style)
    assert len(set(exported)) == len(exported)
    for name in exported:
        assert hasattr(parlant_runtime, name), name


def test_public_names_are_not_private_modules() -> None:
    public = {name for name in dir(parlant_runtime) if not name.startswith("_")}
    submodules = {
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
    future_import = {"annotations"}
    assert public - set(parlant_runtime.__all__) <= submodules | future_import


def test_every_error_derives_from_the_root() -> None:
    errors = [
        getattr(parlant_runtime, name)
        for name in parlant_runtime.__all__
        if name.endswith("Error") and isinstance(getattr(parlant_runtime, name), type)
    ]
    assert errors
    for error in errors:
        assert issubclass(error, parlant_runtime.ParlantRuntimeError)


@pytest.mark.subprocess
def test_the_core_imports_without_database_drivers() -> None:
    code = (
        "import sys\n"
        "sys.modules['asyncpg'] = None\n"
        "sys.modules['aiosqlite'] = None\n"
        "sys.modules['sqlalchemy'] = None\n"
        "import parlant_runtime, parlant_runtime.cli\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
