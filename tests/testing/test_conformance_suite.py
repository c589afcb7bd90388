"""The public storage conformance suite as a host runs it: a subclass in its own test file.

Each test runs pytest in a fresh process on a temporary folder holding only the host's
file, as a host's CI would (the library's own stores run the suite in
``tests/storage/test_conformance.py``).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.subprocess
pytest_plugins = ["pytester"]

HOST_STORE = """
from parlant_runtime import MemoryStore, Store
from parlant_runtime.testing.conformance import StoreConformance


class TestHostStore(StoreConformance):
    async def open_store(self) -> Store:
        return MemoryStore()
"""

# a store that breaks the contract: a stale turn is written instead of refused
CARELESS_STORE = """
from parlant_runtime import MemoryStore, Session, Store, TurnCommit
from parlant_runtime.testing.conformance import StoreConformance


class CarelessStore(MemoryStore):
    async def commit_turn(self, workspace_id: str, turn: TurnCommit) -> Session:
        current = await self.get_session(workspace_id, turn.session_id)
        fresh = turn.model_copy(update={"expected_version": current.version})
        return await super().commit_turn(workspace_id, fresh)


class TestCarelessStore(StoreConformance):
    async def open_store(self) -> Store:
        return CarelessStore()
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", *args)


def test_a_store_that_keeps_the_contract_passes_the_whole_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_host_store=HOST_STORE)
    result = run(pytester)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()
    assert outcomes.get("errors", 0) == 0, result.stdout.str()
    assert outcomes["passed"] == 90  # every test of the suite, with its parameters


def test_a_store_that_breaks_the_contract_fails_the_tests_that_say_so(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_careless_store=CARELESS_STORE)
    result = run(pytester, "-k", "conflict or concurrent or stale", "-rf")
    assert result.parseoutcomes().get("failed", 0) >= 1, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["FAILED *TestCarelessStore::test_a_stale_expected_version_conflicts_and_writes_nothing*"]
    )


def test_a_subclass_without_open_store_says_what_to_implement(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_forgot="""
from parlant_runtime.testing.conformance import StoreConformance


class TestForgot(StoreConformance):
    pass
"""
    )
    result = run(pytester, "-k", "has_every_method")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*TestForgot must implement open_store()*"])
