"""Property tests of the bundle format: load -> dump -> load gives an equal bundle."""

from __future__ import annotations

from typing import Any

from hypothesis import given

from parlant_runtime import AgentBundle, bundle_from_data, dumps_bundle, loads_bundle
from tests.strategies import bundles


@given(bundles())
def test_yaml_round_trip_gives_an_equal_bundle(data: Any) -> None:
    bundle = bundle_from_data(data)
    again = loads_bundle(dumps_bundle(bundle, fmt="yaml"), fmt="yaml")
    assert again == bundle


@given(bundles())
def test_json_round_trip_gives_an_equal_bundle(data: Any) -> None:
    bundle = bundle_from_data(data)
    again = loads_bundle(dumps_bundle(bundle, fmt="json"), fmt="json")
    assert again == bundle


@given(bundles())
def test_dumping_is_stable(data: Any) -> None:
    bundle = bundle_from_data(data)
    text = dumps_bundle(bundle)
    assert dumps_bundle(loads_bundle(text)) == text


@given(bundles())
def test_ids_are_derived_deterministically(data: Any) -> None:
    first, second = bundle_from_data(data), bundle_from_data(data)
    assert first == second
    assert first.agent.id == second.agent.id
    ids = [j.id for j in first.journeys] + [s.id for j in first.journeys for s in j.states]
    assert len(set(ids)) == len(ids), "derived ids must not collide"


@given(bundles())
def test_explicit_ids_equal_to_derived_ones_mean_the_same_bundle(data: Any) -> None:
    bundle = bundle_from_data(data)
    explicit = AgentBundle.model_validate(bundle.model_dump(by_alias=True))
    assert explicit == bundle
