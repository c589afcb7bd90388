"""The example agents shipped in ``examples/`` are valid and cover the format."""

from __future__ import annotations

from pathlib import Path

import pytest

from parlant_runtime import StateType, load_bundle, read_bundle, validate_bundle

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_has_no_finding_at_all(path: Path) -> None:
    report = validate_bundle(read_bundle(path))
    assert report.findings == ()


def test_examples_together_show_every_feature_of_the_format() -> None:
    bundles = [load_bundle(path) for path in EXAMPLES]
    states = [s for b in bundles for j in b.journeys for s in j.states]
    assert {s.state_type for s in states} == set(StateType)
    assert any(s.allow_skip and s.condition for s in states if s.state_type is StateType.CHAT)
    assert any(j.guidelines for b in bundles for j in b.journeys)
    assert any(
        link.priority_override is not None
        for b in bundles
        for j in b.journeys
        for link in j.guidelines
    )
    assert any("{{" in c.template for b in bundles for c in b.canned_responses)
    assert any(c.requires_exact_match for b in bundles for c in b.canned_responses)
    assert any(t.synonyms for b in bundles for t in b.terms)
    assert any(v.is_private for b in bundles for v in b.variables)
    assert any(b.knowledge_bases for b in bundles)
    assert {b.agent.composition_mode.value for b in bundles} == {"fluid", "strict"}
