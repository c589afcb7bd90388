"""`parlant-runtime chat examples/clinic.yaml --model openai:MODEL` holds the clinic
conversation from plain sentences, with no /set.

The model is tests/llm/fake_provider.py's ``clinic_brain`` behind a local
OpenAI-compatible HTTP server: a scripted server answering the runtime's structured
requests by fixed rules, the way a model would for this script; not a real model.
The real command runs in a subprocess, configured as a user would: OPENAI_BASE_URL and
OPENAI_API_KEY.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.llm.fake_provider import clinic_brain, serve

CLI = Path(sys.executable).with_name("parlant-runtime")

pytestmark = pytest.mark.subprocess  # each test runs the command line in a process
SCRIPT = EXAMPLES / "clinic.model.chat"


def _chat(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENAI_BASE_URL": f"{url}/v1", "OPENAI_API_KEY": "test-key"}
    env |= {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "test-key"}
    env.pop("PARLANT_DATABASE_URL", None)
    return subprocess.run(
        [
            str(CLI),
            "chat",
            str(EXAMPLES / "clinic.yaml"),
            "--database-url",
            f"sqlite:///{tmp_path / 'chat.db'}",
            "--no-color",
            *extra,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("model", ["openai:gpt-4o-mini", "anthropic:claude-test"])
def test_the_clinic_conversation_holds_from_plain_sentences(tmp_path: Path, model: str) -> None:
    lines = [line for line in SCRIPT.read_text().splitlines() if not line.startswith("#")]
    assert not any(line.startswith("/set") for line in lines)
    with serve(clinic_brain) as fake:
        done = _chat(tmp_path, fake.url, "--model", model, "--script", str(SCRIPT))
        calls = list(fake.calls)
    assert done.returncode == 0, done.stderr
    replies = [line for line in done.stdout.splitlines() if line.startswith("Clinic assistant:")]
    assert replies == [
        "Clinic assistant: Which department would you like to see - general practice, "
        "dermatology or physiotherapy?",
        "Clinic assistant: Which day suits you for your dermatology visit?",
        "Clinic assistant: Sorry, Monday is fully booked. The earliest free day is Wednesday. "
        "Would another day work?",
        "Clinic assistant: On Wednesday we have 09:00, 11:30 free. Which time would you like?",
        "Clinic assistant: You're booked on Wednesday at 11:30. Your code is CL-1234. "
        "Anything else?",
        "Clinic assistant: Thank you for calling Riverside Family Clinic. Goodbye!",
    ]
    assert f"language model {model}" in done.stdout
    assert "at: no journey" in done.stdout  # the journey ended at its final state
    # two model calls a turn: one for every condition and variable, one for the reply
    assert [c.schema_name for c in calls] == ["understanding", None] * 6
    provider, _, name = model.partition(":")
    assert all(c.model == name and c.provider == provider for c in calls)


def test_the_same_script_without_a_model_does_not_get_far(tmp_path: Path) -> None:
    """The control: keyword matching reads no department from "Dermatology, please"."""
    done = _chat(tmp_path, "http://127.0.0.1:9", "--script", str(SCRIPT))
    assert "Which day suits you" not in done.stdout


def test_a_model_the_command_cannot_use_is_refused_before_anything_runs(tmp_path: Path) -> None:
    done = _chat(tmp_path, "http://127.0.0.1:9", "--model", "gemini:pro", "--script", str(SCRIPT))
    assert done.returncode == 2
    assert "--model gemini:pro: model 'gemini:pro': say PROVIDER:MODEL" in done.stderr


def test_model_agent_uses_the_agents_own_provider_and_model(tmp_path: Path) -> None:
    script = tmp_path / "one.chat"
    script.write_text("Hi, I'd like to book an appointment\n")
    with serve(clinic_brain) as fake:
        done = _chat(tmp_path, fake.url, "--model", "agent", "--script", str(script))
        models = {c.model for c in fake.calls}
    assert done.returncode == 0, done.stderr
    assert models == {"gpt-4o-mini"}  # clinic.yaml: modelProvider openai, modelName gpt-4o-mini


def test_a_price_shows_each_turns_cost_in_the_trace(tmp_path: Path) -> None:
    script = tmp_path / "one.chat"
    script.write_text("Hi, I'd like to book an appointment\n")
    with serve(clinic_brain) as fake:
        args = ("--model", "openai:gpt-4o-mini", "--price", "2.5,10", "--trace")
        done = _chat(tmp_path, fake.url, *args, "--script", str(script))
    assert done.returncode == 0, done.stderr
    model = next(line for line in done.stdout.splitlines() if "call(s)" in line)
    assert "2 call(s)" in model
    assert "$0.00" in model
    alone = _chat(tmp_path, fake.url, "--price", "2.5,10", "--script", str(script))
    assert alone.returncode == 2
    assert "give --model too" in alone.stderr
    wrong = _chat(tmp_path, fake.url, "--model", "openai:x", "--price", "cheap", "--script", "x")
    assert wrong.returncode == 2
    assert "is not IN,OUT" in wrong.stderr
