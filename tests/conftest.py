"""Shared fixtures, the Hypothesis profiles and the markers of the test suite.

Profiles: ``dev`` (the default, quick) and ``ci`` (more examples, no deadline:
CI machines are shared and timing is not what these tests measure). CI selects
``ci`` through the ``CI`` environment variable; ``HYPOTHESIS_PROFILE`` overrides.

Markers let a developer run the quick part alone (``./run quick`` leaves out
``postgres``, ``subprocess``, ``browser`` and ``slow``). A marker that lies would
quietly put a slow test into the quick loop, so three of them are enforced: a test
that starts a process without the ``subprocess`` marker, takes a PostgreSQL
database without the ``postgres`` marker, or a Citus database without the ``citus``
marker, fails and says which marker to add.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests import citus, postgres
from tests.postgres import postgres_url

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BUNDLES = Path(__file__).resolve().parent / "bundles"

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture
def examples_dir() -> Path:
    """The folder of example bundles shipped with the repository."""
    return EXAMPLES


@pytest.fixture
def bundles_dir() -> Path:
    """The folder of test bundles (broken, malformed, valid)."""
    return BUNDLES


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """An empty throwaway PostgreSQL database, dropped afterwards (see tests/postgres.py)."""
    with postgres_url() as url:
        yield url


# --------------------------------------------------------------------------- markers

# every way a test can start a process ends in one of these: subprocess (and so
# asyncio's subprocesses) through its fork_exec or posix_spawn, multiprocessing's
# spawn through _posixsubprocess, pty and multiprocessing's fork through os
_PROCESS_STARTERS: list[tuple[Any, str]] = [
    (owner, name)
    for owner, name in [
        (subprocess, "_fork_exec"),
        (os, "posix_spawn"),
        (os, "posix_spawnp"),
        (os, "fork"),
        (os, "forkpty"),
    ]
    if getattr(owner, name, None) is not None
]
try:
    import _posixsubprocess

    _PROCESS_STARTERS.append((_posixsubprocess, "fork_exec"))
except ImportError:  # pragma: no cover (not a POSIX system)
    pass

_running: pytest.Item | None = None

# whole folders and modules of one kind, marked here rather than test by test
_MARKED_PATHS: dict[str, tuple[str, ...]] = {
    "tests/web/": ("subprocess",),  # each test talks to a uvicorn server process
    "tests/web/test_browser.py": ("browser",),
    "tests/storage_stress/": ("subprocess", "slow"),  # several processes, kill -9
    "tests/test_docs.py": ("subprocess",),  # transcripts run the command line
    "tests/testing/test_pytest_plugin.py": ("subprocess",),  # pytester in a subprocess
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath
    for item in items:
        where = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else ""
        for prefix, names in _MARKED_PATHS.items():
            if where.startswith(prefix):
                for name in names:
                    item.add_marker(name)


def _guarded(owner: Any, name: str) -> Callable[..., Any]:
    original = getattr(owner, name)

    def start(*args: Any, **kwargs: Any) -> Any:
        item = _running
        if item is not None and item.get_closest_marker("subprocess") is None:
            raise AssertionError(
                f"{item.nodeid} starts a process ({name}) but is not marked: add "
                "@pytest.mark.subprocess (or pytestmark) so the quick loop leaves it out"
            )
        return original(*args, **kwargs)

    return start


def pytest_sessionstart(session: pytest.Session) -> None:
    for owner, name in _PROCESS_STARTERS:
        setattr(owner, name, _guarded(owner, name))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    global _running  # noqa: PLW0603 (the one test running in this process)
    _running = item
    postgres.marked = item.get_closest_marker("postgres") is not None
    citus.marked = item.get_closest_marker("citus") is not None


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    global _running  # noqa: PLW0603
    _running = None
    postgres.marked = None
    citus.marked = None
