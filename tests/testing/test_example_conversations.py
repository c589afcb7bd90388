"""The conversation tests of the example bundles pass, and every example bundle has them."""

from __future__ import annotations

from pathlib import Path

import pytest

from parlant_runtime.testing import render_text
from tests.testing.support import EXAMPLE_TESTS, EXAMPLES, run

FILES = sorted(EXAMPLE_TESTS.glob("*.conversation.yaml"))


def test_every_example_bundle_has_conversation_tests() -> None:
    bundles = {path.stem for path in EXAMPLES.glob("*.yaml")}
    tested = {path.name.removesuffix(".conversation.yaml") for path in FILES}
    assert bundles == tested


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_example_conversations_pass(path: Path) -> None:
    result = run(path)
    assert result.passed, render_text([result])
    assert result.bundle is not None
    assert Path(result.bundle).resolve().parent == EXAMPLES
    assert len(result.cases) >= 3
