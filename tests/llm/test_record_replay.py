"""Conversation tests with a model: recorded once, replayed in CI without a network.

``parlant-runtime test FILE --model openai:MODEL --record`` runs the cases against the
model (here the local fake provider) and writes FILE's ``.cassette.yaml``; the same
command without ``--record`` replays it: with the provider gone and no API key set,
the cases pass again with the same output, and a request the recording does not hold
fails the case instead of reaching the network.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.llm.fake_provider import echo_brain, serve

CLI = Path(sys.executable).with_name("parlant-runtime")

pytestmark = pytest.mark.subprocess  # each test runs the command line in a process

BUNDLE = {
    "agent": {"name": "Booker", "compositionMode": "fluid"},
    "journeys": [
        {
            "title": "Book",
            "conditions": ["book"],
            "states": [
                {
                    "name": "ask_day",
                    "stateType": "chat",
                    "isInitial": True,
                    "chatPrompt": "Which day?",
                    "collect": [{"name": "day", "schema": {"type": "string"}}],
                },
                {"name": "done", "stateType": "chat", "chatPrompt": "Booked for {{ vars.day }}."},
            ],
            "transitions": [{"from": "ask_day", "to": "done", "condition": "{{ vars.day }}"}],
        }
    ],
}


def _cases(second: str) -> dict[str, object]:
    return {
        "bundle": "agent.yaml",
        "cases": [
            {
                "name": "books a day from plain words",
                "steps": [
                    {"customer": "I want to book", "expect": {"reply": "Which day?"}},
                    {"customer": second, "expect": {"reply": "Booked for Friday."}},
                ],
            }
        ],
    }


def _test(
    folder: Path, url: str, *extra: str, key: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
    env["OPENAI_BASE_URL"] = f"{url}/v1"
    if key:
        env["OPENAI_API_KEY"] = "sk-secret-key"
    return subprocess.run(
        [str(CLI), "test", str(folder / "agent.conversation.yaml"), "--no-color", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_recorded_once_replayed_without_network_or_key(tmp_path: Path) -> None:
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(BUNDLE))
    conversation = tmp_path / "agent.conversation.yaml"
    conversation.write_text(yaml.safe_dump(_cases("day=Friday")))
    cassette = tmp_path / "agent.cassette.yaml"
    with serve(echo_brain) as fake:
        recorded = _test(tmp_path, fake.url, "--model", "openai:gpt-test", "--record")
        url, calls = fake.url, len(fake.calls)
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert calls == 4  # two turns, two calls each
    text = cassette.read_text()
    assert "sk-secret-key" not in text  # the key never reaches the recording
    assert len(yaml.safe_load(text)["interactions"]) == 4

    # the provider is gone and there is no key: only the recording can answer
    replayed = _test(tmp_path, url, "--model", "openai:gpt-test", key=False)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout == recorded.stdout

    # a conversation the recording does not hold fails; it does not go out to the network
    conversation.write_text(yaml.safe_dump(_cases("day=Friday, please")))
    changed = _test(tmp_path, url, "--model", "openai:gpt-test", key=False)
    assert changed.returncode == 1
    assert "cassette" in changed.stdout.casefold()


def test_replaying_without_a_recording_says_how_to_make_one(tmp_path: Path) -> None:
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(BUNDLE))
    (tmp_path / "agent.conversation.yaml").write_text(yaml.safe_dump(_cases("day=Friday")))
    done = _test(tmp_path, "http://127.0.0.1:9", "--model", "openai:gpt-test")
    assert done.returncode == 2
    assert "run once against the model with --record" in done.stdout + done.stderr
