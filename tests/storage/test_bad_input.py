"""Bad input on the library's own stores beyond the conformance suite.

The cases every store must refuse (bad turns, bad session starts, several faults at
once) are the public conformance suite's (:class:`BadInputConformance
<parlant_runtime.testing.conformance.BadInputConformance>`), run on every adapter by
``test_conformance.py``. What is left here needs to know the adapter: the users of the
host database a session may name live in its ``user`` table (SQL) or are given to the
memory store.
"""

from __future__ import annotations

from parlant_runtime.storage.memory import MemoryStore
from parlant_runtime.storage.port import SessionStart, Store
from parlant_runtime.storage.sql import schema
from parlant_runtime.storage.sql.store import SqlStore
from tests.storage.support import WS, Run, setup_agent


def test_a_session_may_name_a_user_of_the_host_database(store: Store, run: Run) -> None:
    async def body() -> None:
        known: Store = store
        if isinstance(store, MemoryStore):
            known = MemoryStore(users=["u-1"])
        else:
            assert isinstance(store, SqlStore)
            async with store.engine.begin() as conn:
                await conn.execute(
                    schema.user.insert().values(id="u-1", name="Ada", email="ada@example.com")
                )
        agent = await setup_agent(known)
        session = await known.create_session(WS, SessionStart(agent_id=agent, user_id="u-1"))
        assert session.user_id == "u-1"
        assert (await known.get_session(WS, session.id)).user_id == "u-1"

    run(body())
