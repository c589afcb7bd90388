"""The runtime on the host platform's own database, created exactly as its schema makes it.

Every test takes a throwaway PostgreSQL database built from
``tests/fixtures/sim-host-schema.sql`` (the platform's Drizzle DDL, unedited), with one
user (``u-owner``) owning one workspace (``acme``), as the platform would have them.
Then: ``db upgrade`` refuses and says to adopt; ``db adopt`` checks the tables (all of
them, a subset, with rows) and reports every mismatch; the example bundles publish,
export equal and republish unchanged; conversations run; and rows the platform writes
by plain SQL, leaving columns to their defaults, run in the runtime, including events
the platform appends to a session between two turns.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg  # type: ignore[import-untyped]  # no stubs, no py.typed
import pytest
from click.testing import CliRunner, Result

from parlant_runtime import KeywordEvaluator, MigrationError, Runtime, load_bundle
from parlant_runtime.bundle import read_bundle
from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.cli import cli
from parlant_runtime.storage import migrate
from parlant_runtime.storage.adopt import NEEDED_INDEXES
from parlant_runtime.storage.port import InvalidData, TurnCommit, VariableChange
from parlant_runtime.storage.publishing import from_workspace
from parlant_runtime.storage.sql import schema as t
from parlant_runtime.storage.sql.schema import RUNTIME_TABLES
from parlant_runtime.storage.sql.store import SqlStore
from parlant_runtime.storage.url import database_url
from tests.host_schema import OWNER, create_host_database, host_dsn, run_sql, sql
from tests.postgres import postgres_url

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_BUNDLES = [*sorted((ROOT / "examples").glob("*.yaml")), ROOT / "examples/web/agent.yaml"]
WS = "acme"
PARLANT_TABLES = (
    "parlant_agent",
    "parlant_session",
    "parlant_event",
    "parlant_guideline",
    "parlant_canned_response",
    "parlant_term",
    "parlant_journey",
    "parlant_journey_state",
    "parlant_journey_transition",
    "parlant_tool",
    "parlant_tool_integration",
    "parlant_variable",
    "parlant_agent_tool",
    "parlant_journey_guideline",
    "parlant_agent_knowledge_base",
)


def host_database(url: str, *, without: tuple[str, ...] = ()) -> None:
    create_host_database(url, without=without)


_sql = run_sql


@pytest.fixture
def host_url() -> Iterator[str]:
    """A throwaway database holding the platform's tables, not adopted yet."""
    with postgres_url() as url:
        host_database(url)
        yield url


@pytest.fixture
def adopted_url(host_url: str) -> str:
    result = cli_run("db", "adopt", "--database-url", host_url)
    assert result.exit_code == 0, result.output
    return host_url


def cli_run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args], catch_exceptions=False)


def columns(url: str, table: str) -> dict[str, tuple[str, bool, str | None]]:
    rows = sql(
        url,
        """SELECT column_name, data_type, is_nullable, column_default
        FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1""",
        table,
    )
    return {r[0]: (r[1], r[2] == "YES", r[3]) for r in rows}


# ------------------------------------------------------------------ adoption


def test_upgrade_on_a_host_database_says_to_adopt_and_changes_nothing(host_url: str) -> None:
    before = columns(host_url, "parlant_agent")
    with pytest.raises(MigrationError, match="db adopt"):
        asyncio.run(migrate.upgrade(host_url))
    result = cli_run("db", "upgrade", "--database-url", host_url)
    assert result.exit_code == 1
    assert "parlant-runtime db adopt" in result.output
    assert "already exists" not in result.output
    assert columns(host_url, "parlant_agent") == before


def test_adopt_keeps_every_host_column_and_records_the_revision(host_url: str) -> None:
    before = {table: columns(host_url, table) for table in PARLANT_TABLES}
    result = cli_run("db", "adopt", "--database-url", host_url)
    assert result.exit_code == 0, result.output
    assert "checked 15 platform tables" in result.output
    assert asyncio.run(migrate.current_revision(host_url)) == migrate.head()
    for table, host_columns in before.items():
        after = columns(host_url, table)
        for name, shape in host_columns.items():
            assert after[name] == shape, f"{table}.{name} changed"
    # later upgrades work (nothing to do) and adopting again is harmless
    again = cli_run("db", "upgrade", "--database-url", host_url)
    assert again.exit_code == 0, again.output
    assert "nothing to apply" in again.output
    twice = cli_run("db", "adopt", "--database-url", host_url)
    assert twice.exit_code == 0, twice.output
    assert "already adopted" in twice.output


def test_adopt_creates_the_tables_a_partial_host_database_lacks() -> None:
    missing = ("parlant_event", "parlant_variable", "parlant_tool_integration", "parlant_term")
    with postgres_url() as url:
        host_database(url, without=missing)
        result = cli_run("db", "adopt", "--database-url", url)
        assert result.exit_code == 0, result.output
        for table in missing:
            assert f"created {table}" in result.output
            assert columns(url, table)
        assert asyncio.run(migrate.current_revision(url)) == migrate.head()
        refused = cli_run(
            "publish", ROOT / "examples/returns.yaml", "--database-url", url, "--workspace", WS
        )
        assert refused.exit_code == 2
        assert "create them in the host platform first" in refused.output
        host_knowledge_bases(url, ROOT / "examples/returns.yaml")
        published = cli_run(
            "publish", ROOT / "examples/returns.yaml", "--database-url", url, "--workspace", WS
        )
        assert published.exit_code == 0, published.output


def test_adopt_reports_every_mismatch_and_changes_nothing(host_url: str) -> None:
    sql(
        host_url,
        """ALTER TABLE parlant_event ALTER COLUMN "offset" TYPE text;
        ALTER TABLE parlant_journey_state DROP COLUMN chat_prompt;
        ALTER TYPE event_type RENAME VALUE 'tool_result' TO 'tool_output';""",
    )
    result = cli_run("db", "adopt", "--database-url", host_url)
    assert result.exit_code == 1
    out = result.output
    assert "parlant_event.offset is text, the runtime needs integer" in out
    assert "parlant_journey_state.chat_prompt is missing" in out
    assert "enum type event_type lacks 'tool_result'" in out
    assert "3 problems" in out
    assert asyncio.run(migrate.current_revision(host_url)) is None
    assert "idempotency_key" not in columns(host_url, "parlant_event")


def test_adopt_a_database_whose_platform_rows_exist(host_url: str) -> None:
    agent, session = platform_agent_and_session(host_url)
    result = cli_run("db", "adopt", "--database-url", host_url)
    assert result.exit_code == 0, result.output
    assert asyncio.run(run_platform_session(host_url, agent, session)) == ("Which day suits you?")


# ------------------------------------------------------------------ publishing


@pytest.mark.parametrize("bundle", EXAMPLE_BUNDLES, ids=lambda p: p.parent.name + "/" + p.name)
def test_every_example_publishes_exports_equal_and_republishes_unchanged(
    adopted_url: str, bundle: Path, tmp_path: Path
) -> None:
    host_knowledge_bases(adopted_url, bundle)
    first = cli_run("publish", bundle, "--database-url", adopted_url, "--workspace", WS)
    assert first.exit_code == 0, first.output
    assert first.output.startswith("created")
    creator = sql(adopted_url, "SELECT created_by, model_provider FROM parlant_agent")
    assert [row[0] for row in creator] == [OWNER]  # the workspace's owner by default
    again = cli_run("publish", bundle, "--database-url", adopted_url, "--workspace", WS)
    assert again.exit_code == 0, again.output
    assert again.output.startswith("unchanged"), again.output
    name = load_bundle(bundle).agent.name
    out = tmp_path / "export.yaml"
    exported = cli_run(
        "export", "--database-url", adopted_url, "--workspace", WS, "--agent", name, "-o", out
    )
    assert exported.exit_code == 0, exported.output
    assert read_bundle(out).bundle == host_view(load_bundle(bundle))


def host_knowledge_bases(url: str, bundle: Path) -> None:
    """The knowledge bases a bundle links, made by the platform as its own rows."""
    for kb in {kb.knowledge_base_id for kb in load_bundle(bundle).knowledge_bases}:
        sql(
            url,
            "INSERT INTO knowledge_base (id, user_id, workspace_id, name) VALUES ($1, $2, $3, $1)",
            kb,
            OWNER,
            WS,
        )


def host_view(bundle: AgentBundle) -> AgentBundle:
    """The bundle as the host database holds it: omitted agent model settings take the
    host columns' defaults (the export says what the database holds)."""
    agent = bundle.agent.model_copy(
        update={
            "model_provider": bundle.agent.model_provider or "openai",
            "model_name": bundle.agent.model_name or "gpt-4",
        }
    )
    return bundle.model_copy(update={"agent": agent})


UNCONDITIONAL = """
agent: {name: Plain}
guidelines:
  - {action: Always be polite.}
tools:
  - {name: lookup}
journeys:
  - title: Greet
    conditions: ["customer says hello"]
    states:
      - {name: hello, stateType: chat, isInitial: true, chatPrompt: "Hello!"}
      - {name: done, stateType: final, isFinal: true}
    transitions:
      - {from: hello, to: done}
"""


def test_unconditional_guidelines_and_bare_tools_publish_and_export(
    adopted_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text(UNCONDITIONAL, encoding="utf-8")
    result = cli_run(
        "publish",
        path,
        "--database-url",
        adopted_url,
        "--workspace",
        WS,
        "--created-by",
        "u-editor",
    )
    assert result.exit_code == 0, result.output
    rows = sql(adopted_url, "SELECT created_by FROM parlant_agent")
    assert [row[0] for row in rows] == ["u-editor"]
    tool = sql(adopted_url, "SELECT display_name, description, tool_type FROM parlant_tool")
    assert tuple(tool[0]) == ("lookup", "", "custom")
    out = tmp_path / "out.yaml"
    exported = cli_run(
        "export", "--database-url", adopted_url, "--workspace", WS, "--agent", "Plain", "-o", out
    )
    assert exported.exit_code == 0, exported.output
    assert read_bundle(out).bundle == host_view(read_bundle(path).bundle)
    again = cli_run("publish", path, "--database-url", adopted_url, "--workspace", WS)
    assert again.output.startswith("unchanged"), again.output
    path.write_text(UNCONDITIONAL.replace("Hello!", "Hello there!"), encoding="utf-8")
    changed = cli_run("publish", path, "--database-url", adopted_url, "--workspace", WS)
    assert changed.exit_code == 0, changed.output
    assert changed.output.startswith("updated"), changed.output
    rows = sql(adopted_url, "SELECT created_by FROM parlant_agent")
    assert [row[0] for row in rows] == ["u-editor"]  # an update keeps the creator


def test_an_unknown_creator_is_refused_with_the_fix(adopted_url: str) -> None:
    result = cli_run(
        "publish",
        ROOT / "examples/minimal.yaml",
        "--database-url",
        adopted_url,
        "--workspace",
        WS,
        "--created-by",
        "nobody",
    )
    assert result.exit_code == 2
    assert "user 'nobody'" in result.output
    assert "--created-by" in result.output
    assert sql(adopted_url, "SELECT count(*) FROM parlant_agent")[0][0] == 0


def test_create_workspace_on_the_host_needs_an_owner(adopted_url: str) -> None:
    minimal = ROOT / "examples/minimal.yaml"
    refused = cli_run(
        "publish",
        minimal,
        "--database-url",
        adopted_url,
        "--workspace",
        "beta",
        "--create-workspace",
    )
    assert refused.exit_code == 2
    assert "owner" in refused.output
    assert "--created-by" in refused.output
    made = cli_run(
        "publish",
        minimal,
        "--database-url",
        adopted_url,
        "--workspace",
        "beta",
        "--create-workspace",
        "--created-by",
        "u-editor",
    )
    assert made.exit_code == 0, made.output
    owner = sql(adopted_url, "SELECT owner_id FROM workspace WHERE id = 'beta'")
    assert owner[0][0] == "u-editor"


# ------------------------------------------------------------------ running


def test_a_conversation_runs_and_its_rows_fit_the_host_schema(adopted_url: str) -> None:
    async def main() -> tuple[tuple[str, ...], tuple[str, ...]]:
        store = SqlStore.open(adopted_url)
        try:
            report = await store.publish(WS, load_bundle(ROOT / "examples/minimal.yaml"))
            runtime = Runtime(store, evaluator=KeywordEvaluator())
            session = await runtime.start_session(WS, report.agent_id, customer_id="c-1")
            first = await runtime.process_message(WS, session.id, "I'd like to book an appointment")
            second = await runtime.process_message(
                WS, session.id, "Monday", variables={"day": "Monday"}
            )
            return first.replies, second.replies
        finally:
            await store.close()

    first, second = asyncio.run(main())
    assert first == ("Which day suits you?",)
    assert second == ("Booked for Monday. Anything else?",)
    messages = sql(
        adopted_url,
        'SELECT event_type::text, content FROM parlant_event ORDER BY "offset"',
    )
    contents = [(kind, json.loads(content)) for kind, content in messages]
    said = [c for kind, c in contents if kind in ("customer_message", "agent_message")]
    assert [c["message"] for c in said] == [
        "I'd like to book an appointment",
        "Which day suits you?",
        "Monday",
        "Booked for Monday. Anything else?",
    ]
    assert [c["sender"] for c in said] == ["customer", "agent", "customer", "agent"]
    assert all(isinstance(c["timestamp"], str) and c["text"] == c["message"] for c in said)


def platform_agent_and_session(url: str) -> tuple[UUID, UUID]:
    """An agent, a journey and a session written by the platform: plain SQL, defaults."""
    agent, journey, ask, done, session = (uuid4() for _ in range(5))
    sql(
        url,
        """INSERT INTO parlant_agent (id, workspace_id, created_by, name)
        VALUES ($1, 'acme', 'u-owner', 'Platform agent')""",
        agent,
    )
    sql(
        url,
        """INSERT INTO parlant_journey (id, agent_id, title, conditions)
        VALUES ($1, $2, 'Book', '["customer wants to book an appointment"]')""",
        journey,
        agent,
    )
    sql(
        url,
        """INSERT INTO parlant_journey_state (id, journey_id, name, state_type, chat_prompt,
            is_initial, metadata)
        VALUES ($1, $3, 'ask_day', 'chat', 'Which day suits you?', true, NULL),
               ($2, $3, 'done', 'final', NULL, false, NULL)""",
        ask,
        done,
        journey,
    )
    sql(
        url,
        """UPDATE parlant_journey_state SET is_final = true WHERE id = $1""",
        done,
    )
    sql(
        url,
        """INSERT INTO parlant_journey_transition (journey_id, from_state_id, to_state_id,
            condition) VALUES ($1, $2, $3, 'customer says goodbye')""",
        journey,
        ask,
        done,
    )
    sql(
        url,
        """INSERT INTO parlant_guideline (agent_id, condition, action, tool_ids)
        VALUES ($1, 'customer is rude', 'Stay calm.', NULL)""",
        agent,
    )
    sql(
        url,
        """INSERT INTO parlant_session (id, agent_id, workspace_id, metadata, variables, tags)
        VALUES ($1, $2, 'acme', NULL, NULL, NULL)""",
        session,
        agent,
    )
    return agent, session


async def run_platform_session(url: str, agent: UUID, session: UUID) -> str:
    store = SqlStore.open(url)
    try:
        runtime = Runtime(store, evaluator=KeywordEvaluator())
        turn = await runtime.process_message(WS, session, "I'd like to book an appointment")
        bundle = (await store.load_agent(WS, agent)).bundle
        from_workspace(bundle, WS)  # export works on it
        return turn.replies[0]
    finally:
        await store.close()


def test_the_platforms_own_rows_run_in_the_runtime(adopted_url: str) -> None:
    agent, session = platform_agent_and_session(adopted_url)
    assert asyncio.run(run_platform_session(adopted_url, agent, session)) == (
        "Which day suits you?"
    )
    result = cli_run(
        "export", "--database-url", adopted_url, "--workspace", WS, "--agent", "Platform agent"
    )
    assert result.exit_code == 0, result.output
    assert "Stay calm." in result.output


def test_a_turns_session_value_is_in_the_platforms_table_where_the_host_reads_it(
    adopted_url: str,
) -> None:
    """One PostgreSQL: a turn sets a session value in the platform's ``parlant_variable``
    (one row per session and key), the platform's own writes there are read back, and
    the runtime's ``session_variable`` (for Citus) stays empty."""
    agent, session = platform_agent_and_session(adopted_url)

    def platform_sets(value: str) -> None:
        sql(
            adopted_url,
            """INSERT INTO parlant_variable (agent_id, session_id, key, value, value_type)
            VALUES ($1, $2, 'day', to_jsonb($3::text), 'string')
            ON CONFLICT (session_id, key) DO UPDATE
            SET value = excluded.value, updated_at = now()""",
            agent,
            session,
            value,
        )

    async def day() -> object:
        store = SqlStore.open(adopted_url)
        try:
            values = {v.key: v.value for v in await store.get_variables(WS, session)}
            return values.get("day")
        finally:
            await store.close()

    async def turn_sets(value: str) -> None:
        store = SqlStore.open(adopted_url)
        try:
            current = await store.get_session(WS, session)
            await store.commit_turn(
                WS,
                TurnCommit(
                    session_id=session,
                    expected_version=current.version,
                    variables=[VariableChange(key="day", value=value)],
                ),
            )
        finally:
            await store.close()

    platform_sets("monday")
    assert asyncio.run(day()) == "monday"
    asyncio.run(turn_sets("friday"))
    assert asyncio.run(day()) == "friday"
    # the turn updated the platform's row of the key: the host sees the value
    assert sql(
        adopted_url, "SELECT session_id, key, value #>> '{}', scope FROM parlant_variable"
    ) == [(session, "day", "friday", "session")]
    assert sql(adopted_url, "SELECT count(*) FROM parlant_runtime.session_variable") == [(0,)]
    platform_sets("sunday")
    assert asyncio.run(day()) == "sunday"


def test_a_host_row_the_runtime_cannot_use_is_named(adopted_url: str) -> None:
    agent, _session = platform_agent_and_session(adopted_url)
    sql(adopted_url, "UPDATE parlant_journey SET conditions = '\"not a list\"'")

    async def load() -> None:
        store = SqlStore.open(adopted_url)
        try:
            await store.load_agent(WS, agent)
        finally:
            await store.close()

    with pytest.raises(InvalidData, match=r"parlant_journey .* conditions"):
        asyncio.run(load())


def test_events_the_platform_appends_between_turns(adopted_url: str) -> None:
    _agent, session = platform_agent_and_session(adopted_url)
    platform_message = """INSERT INTO parlant_event (session_id, "offset", event_type, content)
        SELECT $1, COALESCE(MAX("offset"), 0) + 1, 'agent_message',
               '{"message": "A human here.", "sender": "agent", "timestamp": "2025-01-01"}'
        FROM parlant_event WHERE session_id = $1"""
    # the platform speaks first: its numbering starts at 1
    sql(adopted_url, platform_message, session)

    async def main() -> list[int]:
        store = SqlStore.open(adopted_url)
        try:
            runtime = Runtime(store, evaluator=KeywordEvaluator())
            await runtime.process_message(WS, session, "I'd like to book an appointment")
            await _sql(adopted_url, platform_message, session)
            await runtime.process_message(WS, session, "hello again")
            events = await store.list_events(WS, session)
            assert events[0].content["text"] == "A human here."  # read as the runtime's own
            return [event.offset for event in events]
        finally:
            await store.close()

    offsets = asyncio.run(main())
    assert offsets == list(range(1, len(offsets) + 1))
    count = sql(adopted_url, "SELECT event_count FROM parlant_session WHERE id = $1", session)
    assert count[0][0] == offsets[-1] + 1


def test_a_turn_that_meets_a_platform_event_mid_commit_retries(adopted_url: str) -> None:
    """The platform inserts an event while a turn commits: the turn computed its offsets
    before the row was visible, its insert meets the platform's on the unique index, and
    the runtime retries the turn instead of failing."""
    _agent, session = platform_agent_and_session(adopted_url)

    async def main() -> tuple[list[int], list[str], str]:
        store = SqlStore.open(adopted_url)
        platform = await asyncpg.connect(host_dsn(adopted_url))
        try:
            runtime = Runtime(store, evaluator=KeywordEvaluator())
            transaction = platform.transaction()
            await transaction.start()
            await platform.execute(
                """INSERT INTO parlant_event (session_id, "offset", event_type, content)
                VALUES ($1, 0, 'status_update', '{"status": "typing"}')""",
                session,
            )
            turn = asyncio.create_task(
                runtime.process_message(WS, session, "I'd like to book an appointment")
            )
            await asyncio.sleep(0.5)  # the turn's insert now waits on the platform's row
            assert not turn.done()
            await transaction.commit()
            result = await turn
            events = await store.list_events(WS, session)
            return (
                [e.offset for e in events],
                [e.event_type.value for e in events],
                result.replies[0],
            )
        finally:
            await platform.close()
            await store.close()

    offsets, kinds, reply = asyncio.run(main())
    assert reply == "Which day suits you?"
    assert offsets == list(range(len(offsets)))
    assert kinds[:2] == ["status_update", "customer_message"]


def test_the_drizzle_declarations_in_the_docs_name_every_runtime_column() -> None:
    """docs/host-database.md tells the platform what to declare so that its schema tool
    keeps the runtime's additions: every column and index still added to the platform's
    tables must be in that list, and the tool must be kept off the runtime's schema."""
    page = (ROOT / "docs" / "host-database.md").read_text(encoding="utf-8")
    block = page.split("```ts", 1)[1].split("```", 1)[0]
    for table in t.metadata.sorted_tables:
        for column in table.columns:
            if column.info.get("runtime"):
                assert f"'{column.name}'" in block, f"{table.name}.{column.name} is not declared"
    for name in NEEDED_INDEXES:
        assert f"'{name}'" in block, f"index {name} is not declared"
    for own in RUNTIME_TABLES:
        if own in {table.name for table in t.platform_tables()}:
            assert f"'!{own}'" in block, f"{own} is not filtered out"
    assert "schemaFilter: ['public']" in block


def test_a_host_value_outside_the_runtimes_vocabulary_is_named(adopted_url: str) -> None:
    """``parlant_variable.value_type`` is free text on the host: an unknown kind is the
    library's error naming the row, at run time and at export, not a raw ValueError."""
    agent, session = platform_agent_and_session(adopted_url)
    sql(
        adopted_url,
        """INSERT INTO parlant_variable (agent_id, key, value, value_type)
        VALUES ($1, 'tier', '"gold"', 'colour')""",
        agent,
    )
    with pytest.raises(InvalidData, match=r"parlant_variable row .*value_type holds 'colour'"):
        asyncio.run(run_platform_session(adopted_url, agent, session))
    result = cli_run(
        "export", "--database-url", adopted_url, "--workspace", WS, "--agent", "Platform agent"
    )
    assert result.exit_code == 2
    assert "value_type holds 'colour'" in result.output


def test_adopt_adds_no_index_to_the_platform_tables(host_url: str) -> None:
    """The platform's tables keep the platform's indexes (the runtime's own keys are the
    primary keys of its own tables): rows the platform's schema allows, such as two
    agent-level rows of one variable key, are adopted as they are."""
    agent, _session = platform_agent_and_session(host_url)
    sql(
        host_url,
        """INSERT INTO parlant_variable (agent_id, key, value, value_type)
        VALUES ($1, 'tier', '"gold"', 'string'), ($1, 'tier', '"silver"', 'string')""",
        agent,
    )
    query = (
        "SELECT tablename, indexname FROM pg_indexes WHERE schemaname = 'public' "
        "AND tablename IN ('parlant_session', 'parlant_event', 'parlant_variable')"
    )
    before = sorted(tuple(row) for row in sql(host_url, query))
    result = cli_run("db", "adopt", "--database-url", host_url)
    assert result.exit_code == 0, result.output
    assert sorted(tuple(row) for row in sql(host_url, query)) == before
    rows = sql(host_url, "SELECT count(*) FROM parlant_variable WHERE key = 'tier'")
    assert rows[0][0] == 2


def test_adopt_on_a_database_without_platform_tables_says_to_upgrade() -> None:
    with postgres_url() as url:
        result = cli_run("db", "adopt", "--database-url", url)
        assert result.exit_code == 1
        assert "nothing to adopt; run `parlant-runtime db upgrade`" in result.output
        assert asyncio.run(migrate.current_revision(url)) is None


@pytest.mark.parametrize("backend", ["sqlite"])
def test_adopt_works_the_same_on_sqlite(backend: str, tmp_path: Path) -> None:
    """SQLite has no host platform, but a database whose tables exist without a recorded
    revision (made by hand, or its version table lost) is adopted the same way."""
    del backend
    url = f"sqlite:///{tmp_path / 'parlant.db'}"
    asyncio.run(migrate.upgrade(url))

    async def forget_revision() -> None:
        engine = migrate.migration_engine(database_url(url))
        try:
            async with engine.begin() as connection:
                await connection.exec_driver_sql("DROP TABLE alembic_version")
        finally:
            await engine.dispose()

    asyncio.run(forget_revision())
    refused = cli_run("db", "upgrade", "--database-url", url)
    assert refused.exit_code == 1
    assert "parlant-runtime db adopt" in refused.output
    adopted = cli_run("db", "adopt", "--database-url", url)
    assert adopted.exit_code == 0, adopted.output
    assert asyncio.run(migrate.current_revision(url)) == migrate.head()
    assert asyncio.run(migrate.differences(url)) == []


def test_a_platform_event_with_its_notification_wakes_a_waiter(adopted_url: str) -> None:
    """As docs/host-database.md tells the platform: an insert alone is seen by a waiter
    only at its timeout; followed by pg_notify('parlant_events', ...) in the same
    transaction it wakes the waiter at once."""
    _agent, session = platform_agent_and_session(adopted_url)
    insert = """INSERT INTO parlant_event (session_id, "offset", event_type, content)
        VALUES ($1, $2, 'agent_message', '{"message": "Hi", "sender": "agent"}')
        RETURNING session_id, "offset" """
    notify = f"""WITH added AS ({insert})
        SELECT pg_notify('parlant_events', session_id::text || ':' || "offset") FROM added"""

    async def waited_for(statement: str, offset: int, timeout: float) -> tuple[list[str], float]:
        store = SqlStore.open(adopted_url)
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            waiter = asyncio.create_task(
                store.wait_for_events(WS, session, after=offset - 1, timeout=timeout)
            )
            await asyncio.sleep(0.5)  # the waiter listens and has read nothing yet
            await run_sql(adopted_url, statement, session, offset)
            events = await waiter
            return [e.content["text"] for e in events], loop.time() - started
        finally:
            await store.close()

    texts, waited = asyncio.run(waited_for(insert, 1, timeout=3))
    assert texts == ["Hi"]
    assert waited >= 2.9  # no notification: seen at the timeout
    texts, waited = asyncio.run(waited_for(notify, 2, timeout=20))
    assert texts == ["Hi"]
    assert waited < 10  # woken by the notification, long before the timeout


# The checks the platform's later hand-written migrations add (never run by its Drizzle
# journal, so not in the DDL fixture), written here from their description.
PLATFORM_CHECKS = """
ALTER TABLE parlant_journey_transition ADD CONSTRAINT no_self_transition
    CHECK (from_state_id <> to_state_id);
ALTER TABLE parlant_journey_state ADD CONSTRAINT initial_not_final
    CHECK (NOT (is_initial AND is_final));
ALTER TABLE parlant_journey_state ADD CONSTRAINT content_fits_type CHECK (
    (state_type <> 'chat' OR chat_prompt IS NOT NULL)
    AND (state_type <> 'tool' OR tool_id IS NOT NULL)
    AND (state_type <> 'decision' OR condition IS NOT NULL));
CREATE UNIQUE INDEX state_name_per_journey ON parlant_journey_state (journey_id, name);
ALTER TABLE parlant_guideline ADD CONSTRAINT guideline_priority
    CHECK (priority BETWEEN 1 AND 1000);
ALTER TABLE parlant_journey_transition ADD CONSTRAINT transition_priority
    CHECK (priority BETWEEN 1 AND 1000);
ALTER TABLE parlant_canned_response ADD CONSTRAINT canned_priority
    CHECK (priority BETWEEN 1 AND 1000);
ALTER TABLE parlant_agent_tool ADD CONSTRAINT agent_tool_priority
    CHECK (priority BETWEEN 1 AND 1000);
ALTER TABLE parlant_term ADD CONSTRAINT term_importance CHECK (importance BETWEEN 1 AND 1000);
"""


def test_every_example_fits_the_platforms_later_checks(adopted_url: str) -> None:
    """Self-transitions, initial-and-final states, state content by type, unique state
    names, priorities in 1..1000: every example publishes under these checks too."""
    sql(adopted_url, PLATFORM_CHECKS)
    for bundle in EXAMPLE_BUNDLES:
        host_knowledge_bases(adopted_url, bundle)
        result = cli_run("publish", bundle, "--database-url", adopted_url, "--workspace", WS)
        assert result.exit_code == 0, f"{bundle.name}: {result.output}"


def test_rows_the_platform_adds_to_a_published_agent_come_last_in_creation_order(
    adopted_url: str,
) -> None:
    """A list row the platform writes has no place in ``parlant_runtime.row_order``: it
    loads after the runtime's rows, by ``created_at`` then id, and has no bundle name;
    an agent the platform wrote has no ``agent_state`` and is at version 1."""
    bundle = ROOT / "examples/minimal.yaml"
    assert (
        cli_run("publish", bundle, "--database-url", adopted_url, "--workspace", WS).exit_code == 0
    )
    agent_id = sql(adopted_url, "SELECT id FROM parlant_agent")[0][0]
    for action, at in (
        ("Second platform rule.", "2030-01-02"),
        ("First platform rule.", "2030-01-01"),
    ):
        sql(
            adopted_url,
            """INSERT INTO parlant_guideline (agent_id, condition, action, created_at)
            VALUES ($1, 'always', $2, $3::text::timestamp)""",
            agent_id,
            action,
            at,
        )
    platform_agent, _ = platform_agent_and_session(adopted_url)

    async def main() -> tuple[AgentBundle, int]:
        store = SqlStore.open(adopted_url)
        try:
            loaded = await store.load_agent(WS, agent_id)
            return loaded.bundle, await store.agent_version(WS, platform_agent)
        finally:
            await store.close()

    loaded, platform_version = asyncio.run(main())
    published = load_bundle(bundle).guidelines
    assert [g.action for g in loaded.guidelines] == [
        *(g.action for g in published),
        "First platform rule.",
        "Second platform rule.",
    ]
    assert [g.name for g in loaded.guidelines[len(published) :]] == [None, None]
    assert platform_version == 1


def test_a_platform_journey_that_validation_refuses_does_not_run(adopted_url: str) -> None:
    """Rows the platform wrote were never validated: the runtime validates the agent they
    make once, as a publish would, and refuses to run it with the findings."""
    agent, session = platform_agent_and_session(adopted_url)
    sql(adopted_url, "UPDATE parlant_journey_state SET is_initial = false")
    with pytest.raises(
        InvalidData, match=r"(?s)rows written by the platform.*no_initial_state at journeys\[0\]"
    ):
        asyncio.run(run_platform_session(adopted_url, agent, session))
    events = sql(adopted_url, "SELECT count(*) AS n FROM parlant_event")
    assert events[0]["n"] == 0, "a refused agent wrote nothing"


def test_a_platform_row_outside_its_specs_range_is_named(adopted_url: str) -> None:
    agent, session = platform_agent_and_session(adopted_url)
    sql(adopted_url, "UPDATE parlant_guideline SET priority = -5")
    with pytest.raises(InvalidData, match=r"parlant_guideline row \S+ cannot be used: priority"):
        asyncio.run(run_platform_session(adopted_url, agent, session))
