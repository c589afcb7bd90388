"""The adapters agree: the same random operations on memory, SQLite and PostgreSQL.

A Hypothesis ``RuleBasedStateMachine`` drives the three stores at once (one event
loop per run) and, after every step, asserts that they gave the same outcome: the
same exception type, or equal results once the store's own ids and timestamps are
normalised away (each store's session ids map to a common index).

Inputs on which the adapters are already known to disagree are left out here and
pinned down by ``xfail`` tests instead; the machine is there to find new
disagreements, not to report the known ones again:

- a journey given without a state, and event journey/state ids of other agents (SQL
  accepts them): event ids are always the session agent's own;
- ``Event.idempotency_key`` and ``Variable.customer_id`` (memory leaves them ``None``):
  not compared;
- which error wins between DuplicateMessage and a scope or id error: customer-scoped
  changes only go to sessions that have a customer;
- keys ending in a newline or longer than 200 characters: not generated.

(NUL characters in texts and values, the sessions of an unknown agent or of another
workspace's, and counters of a removed entity were such inputs; the adapters now agree
on them, and the first two are generated here.)

Without a PostgreSQL server (outside CI) the machine runs memory against SQLite and
the test then reports the PostgreSQL leg as skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from uuid import UUID

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.model import (
    Event,
    EventType,
    Session,
    SessionMode,
    SessionStatus,
    ValueType,
    Variable,
    VariableScope,
)
from parlant_runtime.storage import migrate
from parlant_runtime.storage.memory import MemoryStore
from parlant_runtime.storage.port import (
    DuplicateMessage,
    NewEvent,
    PublishRefused,
    PublishReport,
    SessionStart,
    StorageError,
    Store,
    TurnCommit,
    VariableChange,
)
from parlant_runtime.storage.sql.store import SqlStore
from tests.postgres import postgres_url
from tests.storage.support import (
    OTHER_WS,
    WS,
    make_bundle,
    open_sqlite,
    reset_postgres,
    usage_key,
)

T = TypeVar("T")

BUNDLES: tuple[AgentBundle, ...] = (
    make_bundle(("ask", "confirm", "done"), {"greet": "Say hi."}),
    make_bundle(("ask", "check", "done"), {"greet": "Say hello.", "bye": "Say bye."}, day="tue"),
    make_bundle(("ask", "done"), {"greet": "Say hi."}),
    make_bundle(("ask", "confirm", "check", "done"), {"greet": "Hi."}, journeys=("Book", "Rebook")),
)
MAPPINGS: tuple[Mapping[str, Mapping[str, str]] | None, ...] = (
    None,
    {"Book": {"confirm": "ask", "check": "ask"}},
    {"Book": {"confirm": "nowhere"}},
)
TEXTS = ("hi", "monday", "", "naïve ☕", "x" * 300, "nul\x00")
KEYS = (None, None, None, "k1", "k2", "k3")
UNKNOWN_AGENT = UUID(int=7)
VALUES: tuple[Any, ...] = (
    "friday",
    3,
    2.5,
    True,
    None,
    [1, "a"],
    {"a": {"b": 1}},
    math.nan,
    {"nul\x00": 1},
)
VALUE_TYPES = tuple(ValueType)


def _event_of(
    event_type: EventType,
    text: str,
    metadata: dict[str, Any],
    tool_call_id: str | None,
    key: str | None,
) -> NewEvent:
    return NewEvent(
        event_type=event_type,
        content={"text": text},
        metadata=metadata,
        tool_call_id=tool_call_id,
        idempotency_key=key,
    )


def _change_of(
    key: str, value: Any, scope: VariableScope, value_type: ValueType, is_private: bool
) -> VariableChange:
    return VariableChange(
        key=key, value=value, scope=scope, value_type=value_type, is_private=is_private
    )


events = st.builds(
    _event_of,
    st.sampled_from(list(EventType)),
    st.sampled_from(TEXTS),
    st.sampled_from([{}, {"ms": 12}, {"tags": ["a"]}]),
    st.sampled_from([None, None, "t1"]),
    st.sampled_from(KEYS),
)
changes = st.builds(
    _change_of,
    st.sampled_from(["day", "visits", "note", "bad key"]),
    st.sampled_from(VALUES),
    st.sampled_from([VariableScope.SESSION] * 3 + [VariableScope.CUSTOMER] * 2),
    st.sampled_from(VALUE_TYPES),
    st.booleans(),
)
positions = st.sampled_from(["keep", "clear", "state", "state", "journey", "foreign", "loose"])


# ------------------------------------------------------------------ normalising


def _session(s: Session, index: Mapping[UUID, int]) -> dict[str, Any]:
    times = {"id", "created_at", "updated_at", "started_at", "last_activity_at", "ended_at"}
    return {**s.model_dump(exclude=times), "index": index.get(s.id), "ended": bool(s.ended_at)}


def _event(e: Event) -> tuple[Any, ...]:
    return (
        e.offset,
        e.event_type,
        e.content,
        e.metadata,
        e.tool_call_id,
        e.journey_id,
        e.state_id,
    )


def _variable(v: Variable, index: Mapping[UUID, int]) -> tuple[Any, ...]:
    session = index.get(v.session_id) if v.session_id is not None else None
    return (v.key, v.value, v.scope, v.value_type, v.is_private, v.description, session)


def _report(r: PublishReport) -> tuple[Any, ...]:
    return (
        r.agent_id,
        r.version,
        r.created,
        r.changes,
        dict(r.stranded_sessions),
        r.moved_sessions,
        r.written,
    )


def _error(exc: StorageError) -> tuple[Any, ...]:
    if isinstance(exc, DuplicateMessage):
        return ("DuplicateMessage", exc.offset)
    if isinstance(exc, PublishRefused):
        return ("PublishRefused", _report(exc.report) if exc.report else None)
    return (type(exc).__name__,)


# ------------------------------------------------------------------ the machine

NO_SUCH_ID = UUID(int=1)


def _other(workspace: str) -> str:
    return OTHER_WS if workspace == WS else WS


class StoresAgree(RuleBasedStateMachine):
    """Memory, SQLite and (when given) PostgreSQL, driven in lockstep."""

    template: ClassVar[Path]
    folder: ClassVar[Path]
    postgres: ClassVar[str | None]
    runs: ClassVar[itertools.count[int]]

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.Runner()
        folder = self.folder / f"run-{next(self.runs)}"
        folder.mkdir()
        self.stores: dict[str, Store] = {
            "memory": MemoryStore(),
            "sqlite": open_sqlite(self.template, folder),
        }
        if self.postgres is not None:
            self.loop.run(reset_postgres(self.postgres))
            self.stores["postgresql"] = SqlStore.open(self.postgres)
        self.ids: list[dict[str, UUID]] = []  # session index -> store -> its session id
        self.workspace: list[str] = []
        self.customer: list[str | None] = []
        self.version: list[int] = []
        self.agents: dict[str, UUID] = {}
        self.agent_bundles: dict[str, AgentBundle] = {}
        for workspace in (WS, OTHER_WS):
            self.start_workspace(workspace)
        # ws-b gets its agent when a publish rule picks it: a cheaper start
        self.publish_in(WS, BUNDLES[0], None, force=False, dry_run=False)

    def start_workspace(self, workspace: str) -> None:
        self.same(lambda s, n: s.ensure_workspace(workspace), lambda r, n: r)

    def teardown(self) -> None:
        try:
            for store in self.stores.values():
                self.loop.run(store.close())
        finally:
            self.loop.close()

    # -------------------------------------------------------------- helpers

    def index(self, store: str) -> dict[UUID, int]:
        return {ids[store]: i for i, ids in enumerate(self.ids)}

    def same(
        self,
        call: Callable[[Store, str], Coroutine[Any, Any, T]],
        normalise: Callable[[T, str], Any],
    ) -> T | None:
        """Run ``call`` on every store, assert the outcomes agree, give memory's result."""
        outcomes: dict[str, Any] = {}
        results: dict[str, T] = {}
        for name, store in self.stores.items():
            try:
                results[name] = self.loop.run(call(store, name))
            except StorageError as exc:
                outcomes[name] = _error(exc)
            else:
                outcomes[name] = ("ok", normalise(results[name], name))
        reference = outcomes["memory"]
        for name, seen in outcomes.items():
            assert seen == reference, f"{name} disagrees with memory:\n{seen}\n!=\n{reference}"
        return results.get("memory")

    def publish_in(
        self,
        workspace: str,
        bundle: AgentBundle,
        mapping: Mapping[str, Mapping[str, str]] | None,
        *,
        force: bool,
        dry_run: bool,
    ) -> None:
        report = self.same(
            lambda s, n: s.publish(
                workspace, bundle, state_mapping=mapping, force=force, dry_run=dry_run
            ),
            lambda r, n: _report(r),
        )
        if report is not None and report.written:
            self.agents[workspace] = report.agent_id
            loaded = self.loop.run(self.stores["memory"].load_agent(workspace, report.agent_id))
            self.agent_bundles[workspace] = loaded.bundle

    def check_session(self, i: int) -> None:
        """Events and variables of one session agree (its row is the invariant's)."""
        ws = self.workspace[i]
        self.same(
            lambda s, n: s.list_events(ws, self.ids[i][n]),
            lambda r, n: [_event(e) for e in r],
        )
        self.same(
            lambda s, n: s.get_variables(ws, self.ids[i][n]),
            lambda r, n: [_variable(v, self.index(n)) for v in r],
        )

    def check_usage(self) -> None:
        """Usage counters of both agents and their guidelines agree."""
        for workspace, agent in self.agents.items():
            self.usage_of(workspace, "agent", agent)
            for guideline in self.agent_bundles[workspace].guidelines:
                self.usage_of(workspace, "guideline", guideline.id)

    def usage_of(self, workspace: str, kind: str, entity_id: UUID) -> None:
        self.same(lambda s, n: s.usage(workspace, kind, entity_id), lambda r, n: r)

    # -------------------------------------------------------------- rules

    @rule(
        workspace=st.sampled_from([WS, WS, OTHER_WS]),
        customer=st.sampled_from([None, "c1", "c1", "c2"]),
        mode=st.sampled_from(list(SessionMode)),
        foreign_agent=st.sampled_from([False] * 5 + [True]),
    )
    def create_session(
        self, *, workspace: str, customer: str | None, mode: SessionMode, foreign_agent: bool
    ) -> None:
        owner = _other(workspace) if foreign_agent else workspace
        agent_id = self.agents.get(owner, NO_SUCH_ID)
        start = SessionStart(agent_id=agent_id, customer_id=customer, mode=mode)
        created: dict[str, UUID] = {}

        async def create(store: Store, name: str) -> Session:
            session = await store.create_session(workspace, start)
            created[name] = session.id
            return session

        session = self.same(create, lambda r, n: _session(r, {r.id: len(self.ids)}))
        if session is not None:
            self.ids.append(created)
            self.workspace.append(workspace)
            self.customer.append(customer)
            self.version.append(session.version)

    @precondition(lambda self: bool(self.ids))
    @rule(
        pick=st.integers(min_value=0, max_value=99),
        offset=st.sampled_from([0, 0, 0, 0, -1, 1]),
        new_events=st.lists(events, max_size=4),
        new_values=st.lists(changes, max_size=3),
        position=positions,
        state_pick=st.integers(min_value=0, max_value=99),
        status=st.sampled_from([None, None, None, *SessionStatus]),
        mode=st.sampled_from([None, None, *SessionMode]),
        usage=st.sampled_from(["none", "none", "guideline", "agent", "bad-counter"]),
        wrong_workspace=st.sampled_from([False] * 7 + [True]),
        metadata=st.sampled_from([None, None, None, {}, {"channel": "web", "n": [1, 2]}]),
    )
    def commit(
        self,
        *,
        pick: int,
        offset: int,
        new_events: list[NewEvent],
        new_values: list[VariableChange],
        position: str,
        state_pick: int,
        status: SessionStatus | None,
        mode: SessionMode | None,
        usage: str,
        wrong_workspace: bool,
        metadata: dict[str, Any] | None,
    ) -> None:
        i = pick % len(self.ids)
        ws = self.workspace[i]
        bundle = self.agent_bundles[ws]
        pairs = [(j.id, s.id) for j in bundle.journeys for s in j.states]
        journey_id, state_id = pairs[state_pick % len(pairs)]
        current = self.loop.run(self.stores["memory"].get_session(ws, self.ids[i]["memory"]))
        where = {
            "keep": (current.current_journey_id, current.current_state_id),
            "clear": (None, None),
            "state": (journey_id, state_id),
            "journey": (journey_id, None),
            "foreign": self._foreign_position(ws),
            "loose": (None, state_id),
        }[position]
        if self.customer[i] is None:  # see KNOWN: no scope error beside a duplicate key
            new_values = [c.model_copy(update={"scope": VariableScope.SESSION}) for c in new_values]
        new_events = [
            e.model_copy(update={"journey_id": journey_id, "state_id": state_id})
            if e.event_type is EventType.JOURNEY_TRANSITION
            else e
            for e in new_events
        ]
        deltas = {
            "none": {},
            "guideline": {usage_key("guideline", bundle.guidelines[0].id, "match_count"): 2}
            if bundle.guidelines
            else {},
            "agent": {usage_key("agent", self.agents[ws], "total_messages"): 1},
            "bad-counter": {usage_key("agent", self.agents[ws], "hits"): 1},
        }[usage]
        target = _other(ws) if wrong_workspace else ws

        def commit_on(store: Store, name: str) -> Coroutine[Any, Any, Session]:
            return store.commit_turn(
                target,
                TurnCommit(
                    session_id=self.ids[i][name],
                    expected_version=self.version[i] + offset,
                    events=new_events,
                    variables=new_values,
                    current_journey_id=where[0],
                    current_state_id=where[1],
                    status=status,
                    mode=mode,
                    usage=deltas,
                    metadata=metadata,
                ),
            )

        session = self.same(commit_on, lambda r, n: _session(r, self.index(n)))
        if session is not None:
            self.version[i] = session.version
        self.check_session(i)
        if deltas:
            self.check_usage()

    @precondition(lambda self: bool(self.ids))
    @rule(
        pick=st.integers(min_value=0, max_value=99),
        key=st.sampled_from(["k1", "k2", "k3", None]),
        reply=st.booleans(),
    )
    def message(self, *, pick: int, key: str | None, reply: bool) -> None:
        """A customer message (often a retried one) and maybe a reply, at the right version."""
        sent = [NewEvent(event_type=EventType.CUSTOMER_MESSAGE, idempotency_key=key)]
        if reply:
            sent.append(NewEvent(event_type=EventType.AGENT_MESSAGE, content={"text": "ok"}))
        self.commit(
            pick=pick,
            offset=0,
            new_events=sent,
            new_values=[],
            position="keep",
            state_pick=0,
            status=None,
            mode=None,
            usage="none",
            wrong_workspace=False,
            metadata=None,
        )

    def _foreign_position(self, ws: str) -> tuple[UUID, UUID]:
        """A journey and state of the other workspace's agent (refused by every adapter)."""
        other = self.agent_bundles.get(_other(ws))
        if other is None:
            return NO_SUCH_ID, NO_SUCH_ID
        return other.journeys[0].id, other.journeys[0].states[0].id

    @precondition(lambda self: bool(self.ids))
    @rule(
        now=st.sampled_from([True, False, False]),
        variant=st.integers(min_value=0, max_value=len(BUNDLES) - 1),
        mapping=st.sampled_from(MAPPINGS),
        force=st.booleans(),
        dry_run=st.sampled_from([False, False, True]),
        workspace=st.sampled_from([WS, WS, OTHER_WS]),
    )
    def publish(
        self,
        *,
        now: bool,
        variant: int,
        mapping: Mapping[str, Mapping[str, str]] | None,
        force: bool,
        dry_run: bool,
        workspace: str,
    ) -> None:
        if not now:  # publishes are rare next to turns, and the costliest step
            return
        self.publish_in(workspace, BUNDLES[variant], mapping, force=force, dry_run=dry_run)
        self.check_usage()
        for i in range(len(self.ids)):  # a publish moves sessions and clears removed ids
            self.version[i] = self.loop.run(
                self.stores["memory"].get_session(self.workspace[i], self.ids[i]["memory"])
            ).version
            self.check_session(i)

    @precondition(lambda self: bool(self.ids))
    @rule(
        pick=st.integers(min_value=0, max_value=99),
        key=st.sampled_from(["k1", "k2", "k3", "k4"]),
        after=st.integers(min_value=-1, max_value=6),
        limit=st.sampled_from([None, 0, 1, 3]),
        roll_up=st.sampled_from([False, False, True]),
    )
    def read(self, *, pick: int, key: str, after: int, limit: int | None, roll_up: bool) -> None:
        if roll_up:
            self.same(lambda s, n: s.roll_up_usage(), lambda r, n: r)
            self.check_usage()
        i = pick % len(self.ids)
        ws = self.workspace[i]
        self.same(
            lambda s, n: s.find_message(ws, self.ids[i][n], key),
            lambda r, n: _event(r) if r is not None else None,
        )
        self.same(
            lambda s, n: s.list_events(ws, self.ids[i][n], after=after, limit=limit),
            lambda r, n: [_event(e) for e in r],
        )
        self.same(
            lambda s, n: s.wait_for_events(ws, self.ids[i][n], after=after, timeout=0),
            lambda r, n: [_event(e) for e in r],
        )

    # -------------------------------------------------------------- invariants

    @invariant()
    def sessions_agree(self) -> None:
        """Every session row agrees, listed oldest first per agent."""
        for workspace, agent in self.agents.items():
            self.sessions_of(workspace, agent)
            self.sessions_of(_other(workspace), agent)  # another workspace's: NotFound
            self.sessions_of(workspace, UNKNOWN_AGENT)

    def sessions_of(self, workspace: str, agent: UUID) -> None:
        self.same(
            lambda s, n: s.list_sessions(workspace, agent),
            lambda r, n: [_session(x, self.index(n)) for x in r],
        )


AGREEMENT = settings(
    max_examples=25,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _machine(template: Path, folder: Path, postgres: str | None) -> type[StoresAgree]:
    class Configured(StoresAgree):
        pass

    Configured.template, Configured.folder, Configured.postgres = template, folder, postgres
    Configured.runs = itertools.count()
    return Configured


@pytest.mark.postgres
def test_memory_sqlite_and_postgresql_agree(sqlite_template: Path, tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        try:
            url: str | None = stack.enter_context(postgres_url())
            skipped = ""
        except pytest.skip.Exception as exc:  # no server, outside CI: run the other two legs
            url, skipped = None, str(exc)
        if url is not None:
            asyncio.run(migrate.upgrade(url))
        run_state_machine_as_test(_machine(sqlite_template, tmp_path, url), settings=AGREEMENT)
    if skipped:
        pytest.skip(f"memory and SQLite agree; the PostgreSQL leg did not run: {skipped}")
