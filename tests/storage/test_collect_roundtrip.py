"""A state's ``collect`` list survives every store: published, loaded back equal.

The SQL tables have no column for it: it is kept in the state's ``metadata`` column
under a key of the runtime's own, and taken out again on load, so the state's own
metadata reads back as it was written.
"""

from __future__ import annotations

from parlant_runtime import Store, load_bundle
from tests.storage.support import EXAMPLES, WS, Run, publish, setup_agent


def test_collected_variables_load_back_as_published(store: Store, run: Run) -> None:
    async def body() -> None:
        bundle = load_bundle(EXAMPLES / "clinic.yaml")
        journey = bundle.journeys[0]
        state = journey.states[0]
        state.metadata = {"owner": "front desk"}
        agent_id = await setup_agent(store, bundle)
        loaded = (await store.load_agent(WS, agent_id)).bundle
        for mine, stored in zip(bundle.journeys, loaded.journeys, strict=True):
            for a, b in zip(mine.states, stored.states, strict=True):
                assert b.collect == a.collect, (mine.title, a.name)
                assert b.metadata == a.metadata, (mine.title, a.name)
        first = loaded.journeys[0].states[0]
        assert [c.name for c in first.collect] == ["department", "patient_name"]
        assert first.metadata == {"owner": "front desk"}
        # publishing it again is no change at all
        again = await publish(store, WS, bundle)
        assert again.changes.empty

    run(body())
