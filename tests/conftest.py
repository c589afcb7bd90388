"""Shared fixtures and the Hypothesis profiles of the test suite.

Profiles: ``dev`` (the default, quick) and ``ci`` (more examples, no deadline:
CI machines are shared and timing is not what these tests measure). CI selects
``ci`` through the ``CI`` environment variable; ``HYPOTHESIS_PROFILE`` overrides.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

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
