"""The storage conformance suite: the tests every :class:`~parlant_runtime.Store` passes.

The memory store, SQLite and PostgreSQL run exactly these tests in the library's own
test suite; a host with a store of its own runs them the same way, with pytest::

    import pytest
    from parlant_runtime import Store
    from parlant_runtime.testing.conformance import StoreConformance


    class TestMyStore(StoreConformance):
        async def open_store(self) -> Store:
            return await MyStore.connect(...)  # empty, schema in place

pytest collects the subclass (its name starts with ``Test``) and runs every test of
the suite on a fresh store from :meth:`StoreConformance.open_store`, closed again
after the test. A test is a plain function that calls ``run(coroutine)`` on an event
loop of its own, so no asyncio plug-in for pytest is needed. What the suite covers,
class by class:

- :class:`PublishingConformance`: ``publish`` (create, identical and changed
  republishes, dry runs, stranded sessions mapped or forced), ``load_agent``,
  ``find_agent``, ``agent_version``;
- :class:`SessionConformance`: sessions, and turns with contiguous offsets,
  compare-and-set on the session's version and idempotency keys;
- :class:`VariableEventUsageConformance`: variables by scope, ``wait_for_events``,
  usage counters and their roll-up, ``close``;
- :class:`TenancyConformance` and :class:`TenancyIdConformance`: an id of another
  workspace behaves exactly like one that does not exist;
- :class:`BadInputConformance`: bad turns and session starts are refused with
  :class:`~parlant_runtime.InvalidData` and write nothing.

A store that cannot meet a test yet marks it as an expected failure in the subclass
(``pytest.mark.xfail``), and says why. This module needs pytest, which the library
does not depend on; install it where the suite runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from parlant_runtime.storage.port import Store
from parlant_runtime.testing.conformance._bad_input import BadInputConformance
from parlant_runtime.testing.conformance._publishing import PublishingConformance
from parlant_runtime.testing.conformance._sessions import SessionConformance
from parlant_runtime.testing.conformance._support import Run
from parlant_runtime.testing.conformance._tenancy import TenancyConformance
from parlant_runtime.testing.conformance._tenancy_ids import TenancyIdConformance
from parlant_runtime.testing.conformance._variables import VariableEventUsageConformance

__all__ = [
    "BadInputConformance",
    "PublishingConformance",
    "Run",
    "SessionConformance",
    "StoreConformance",
    "TenancyConformance",
    "TenancyIdConformance",
    "VariableEventUsageConformance",
]


class StoreConformance(
    PublishingConformance,
    SessionConformance,
    VariableEventUsageConformance,
    TenancyConformance,
    TenancyIdConformance,
    BadInputConformance,
):
    """The whole suite: subclass it as ``Test...`` and implement :meth:`open_store`.

    The fixtures a test takes are ``store`` (a fresh store, closed after the test) and
    ``run`` (runs a coroutine on the test's event loop). A subclass may override the
    ``store`` fixture instead of :meth:`open_store` when opening needs other fixtures.
    """

    async def open_store(self) -> Store:
        """A new, empty store whose schema is in place; called once per test."""
        raise NotImplementedError(f"{type(self).__name__} must implement open_store()")

    @pytest.fixture
    def runner(self) -> Iterator[asyncio.Runner]:
        """The test's event loop."""
        with asyncio.Runner() as loop:
            yield loop

    @pytest.fixture
    def run(self, runner: asyncio.Runner) -> Run:
        """Run a coroutine on the test's event loop (as often as the test needs)."""
        return runner.run

    @pytest.fixture
    def store(self, runner: asyncio.Runner) -> Iterator[Store]:
        """A store from :meth:`open_store`, closed on the test's loop afterwards."""
        opened = runner.run(self.open_store())
        yield opened
        runner.run(opened.close())

    def test_the_store_has_every_method_of_the_port(self, store: Store) -> None:
        assert isinstance(store, Store)
