"""``publish``, ``export`` and ``validate --agent`` against real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from parlant_runtime import EventType, load_bundle
from parlant_runtime.cli import cli
from parlant_runtime.storage import NewEvent, SessionStart, TurnCommit
from parlant_runtime.storage.sql.store import SqlStore
from tests.postgres import postgres_url

EXAMPLES = Path(__file__).parent.parent / "examples"
CLINIC = EXAMPLES / "clinic.yaml"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args], catch_exceptions=False)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An upgraded, empty database."""
    if request.param == "sqlite":
        database = f"sqlite:///{tmp_path / 'cli.db'}"
        assert run("db", "upgrade", "--database-url", database).exit_code == 0
        yield database
        return
    with postgres_url() as database:
        assert run("db", "upgrade", "--database-url", database).exit_code == 0
        yield database


def publish(url: str, bundle: Path, *extra: str) -> Result:
    return run("publish", bundle, "--database-url", url, "--workspace", "acme", *extra)


def place_a_session(url: str, journey: str, state: str) -> None:
    """Start a session of the clinic agent and put it on ``journey``/``state``."""

    async def work() -> None:
        store = SqlStore.open(url)
        try:
            agent_id = await store.find_agent("acme", "Clinic assistant")
            assert agent_id is not None
            stored = await store.load_agent("acme", agent_id)
            target = stored.bundle.journey(journey)
            assert target is not None
            position = target.state(state)
            assert position is not None
            session = await store.create_session("acme", SessionStart(agent_id=agent_id))
            await store.commit_turn(
                "acme",
                TurnCommit(
                    session_id=session.id,
                    expected_version=0,
                    events=[NewEvent(event_type=EventType.JOURNEY_TRANSITION)],
                    current_journey_id=target.id,
                    current_state_id=position.id,
                ),
            )
        finally:
            await store.close()

    asyncio.run(work())


def test_publish_then_republish_then_export_gives_the_bundle_back(url: str, tmp_path: Path) -> None:
    first = publish(url, CLINIC, "--create-workspace")
    assert first.exit_code == 0, first.output
    assert first.output.startswith("created: agent ")
    assert "added 2 journey(s): Book a visit, Cancel a visit" in first.output
    again = publish(url, CLINIC)
    assert again.exit_code == 0
    assert again.output.startswith("unchanged:")
    out = tmp_path / "exported.yaml"
    exported = run(
        "export", "--database-url", url, "--workspace", "acme",
        "--agent", "Clinic assistant", "-o", out,
    )  # fmt: skip
    assert exported.exit_code == 0, exported.output
    assert load_bundle(out) == load_bundle(CLINIC)


def test_a_bundle_with_errors_is_not_published(url: str) -> None:
    broken = Path(__file__).parent / "bundles" / "broken" / "dead_end.yaml"
    result = publish(url, broken, "--create-workspace")
    assert result.exit_code == 1
    assert "dead_end" in result.output
    assert "not published" in result.output
    listed = run(
        "export", "--database-url", url, "--workspace", "acme", "--agent", "Clinic assistant"
    )
    assert listed.exit_code == 2
    assert "has no agent named 'Clinic assistant'" in listed.output


def test_a_changed_bundle_reports_changes_and_strands_no_session(url: str, tmp_path: Path) -> None:
    assert publish(url, CLINIC, "--create-workspace").exit_code == 0
    place_a_session(url, "Book a visit", "ask_day")
    changed = tmp_path / "clinic.yaml"
    changed.write_text(CLINIC.read_text().replace("ask_day", "pick_day"))

    refused = publish(url, changed)
    assert refused.exit_code == 1
    assert "1 live session(s) on removed state Book a visit/ask_day" in refused.output
    assert "--map" in refused.output

    dry = publish(url, changed, "--dry-run", "--map", "Book a visit/ask_day=pick_day")
    assert dry.exit_code == 0
    assert "dry run" in dry.output
    assert publish(url, CLINIC).output.startswith("unchanged:")  # the dry run wrote nothing

    moved = publish(url, changed, "--map", "Book a visit/ask_day=pick_day", "--format", "json")
    assert moved.exit_code == 0, moved.output
    report = json.loads(moved.output)
    assert report["version"] == 2
    assert report["movedSessions"] == 1
    assert "Book a visit/pick_day" in report["changes"]["added"]["state"]
    assert "Book a visit/ask_day" in report["changes"]["removed"]["state"]


def test_force_moves_stranded_sessions_out_of_their_journey(url: str, tmp_path: Path) -> None:
    assert publish(url, CLINIC, "--create-workspace").exit_code == 0
    place_a_session(url, "Book a visit", "ask_day")
    changed = tmp_path / "clinic.yaml"
    changed.write_text(CLINIC.read_text().replace("ask_day", "pick_day"))
    forced = publish(url, changed, "--force")
    assert forced.exit_code == 0, forced.output
    assert "moved 1 session(s)" in forced.output


def test_a_map_to_a_state_that_does_not_exist_is_refused(url: str, tmp_path: Path) -> None:
    assert publish(url, CLINIC, "--create-workspace").exit_code == 0
    place_a_session(url, "Book a visit", "ask_day")
    changed = tmp_path / "clinic.yaml"
    changed.write_text(CLINIC.read_text().replace("ask_day", "pick_day"))
    result = publish(url, changed, "--map", "Book a visit/ask_day=nowhere")
    assert result.exit_code == 1
    assert "does not have" in result.output


def test_validate_a_stored_agent(url: str) -> None:
    assert publish(url, CLINIC, "--create-workspace").exit_code == 0
    result = run(
        "validate", "--database-url", url, "--workspace", "acme", "--agent", "Clinic assistant",
        "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["files"][0]["path"] == "acme/Clinic assistant"


def test_a_database_behind_the_schema_is_refused_with_the_fix(tmp_path: Path) -> None:
    result = publish(f"sqlite:///{tmp_path / 'empty.db'}", CLINIC, "--create-workspace")
    assert result.exit_code == 2
    assert "run `parlant-runtime db upgrade" in result.output


def test_an_unknown_workspace_is_refused(url: str) -> None:
    result = publish(url, CLINIC)
    assert result.exit_code == 2
    assert "no workspace 'acme'" in result.output


def test_a_bad_map_entry_is_a_usage_error(url: str) -> None:
    result = publish(url, CLINIC, "--map", "no-slash")
    assert result.exit_code == 2
    assert "JOURNEY/OLD_STATE=NEW_STATE" in result.output


VAULT = """\
agent: {name: Vault, compositionMode: fluid}
variables:
  - {key: secret, value: Qx7Vz4Jk9Wm2, isPrivate: true}
  - {key: greeting, value: Hello}
guidelines:
  - {name: g, condition: "{{ vars.secret == 'x' }}", action: "{{ vars.greeting }}."}
"""


def test_export_leaves_out_the_values_of_private_variables(url: str, tmp_path: Path) -> None:
    bundle = tmp_path / "vault.yaml"
    bundle.write_text(VAULT)
    assert publish(url, bundle, "--create-workspace").exit_code == 0
    out = tmp_path / "exported.yaml"
    where = ("--database-url", url, "--workspace", "acme", "--agent", "Vault", "-o", out)
    exported = run("export", *where)
    assert exported.exit_code == 0, exported.output
    assert "Qx7V" not in out.read_text()
    assert "Qx7V" not in exported.output
    assert "left out the value of private variable(s) secret" in exported.output
    assert "Hello" in out.read_text()  # public values stay
    private = load_bundle(out).variables[0]
    assert (private.key, private.is_private, private.value) == ("secret", True, None)
    included = run("export", *where, "--include-private-values")
    assert included.exit_code == 0, included.output
    assert load_bundle(out) == load_bundle(bundle)
