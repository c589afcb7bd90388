"""The example's agent: valid, and its conversation tests pass and take every transition.

The HTTP and browser tests rely on these conversations (a latte ordered in one
message, the question asked until a drink is named); pinning them here, without
a server, says whether a failure there is the agent's or the backend's.
"""

from __future__ import annotations

import json

from click.testing import CliRunner

from parlant_runtime.cli import cli
from tests.web.conftest import ROOT

WEB = ROOT / "examples" / "web"


def test_the_agent_has_no_finding() -> None:
    result = CliRunner().invoke(cli, ["validate", str(WEB / "agent.yaml")])
    assert result.exit_code == 0, result.output
    assert "1 file checked: 0 errors, 0 warnings, 0 infos" in result.output


def test_its_conversations_pass_and_cover_every_state_and_transition() -> None:
    result = CliRunner().invoke(cli, ["test", str(WEB), "--coverage", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["summary"]["failed"] == 0
    assert data["summary"]["passed"] == data["summary"]["cases"] >= 3
    (bundle,) = data["coverage"]["bundles"]
    for journey in bundle["journeys"]:
        assert journey["states"]["covered"] == journey["states"]["total"], journey["title"]
        assert journey["transitions"]["covered"] == journey["transitions"]["total"], journey
