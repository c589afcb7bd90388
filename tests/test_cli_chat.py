"""``parlant-runtime chat``: scripted, piped and interactive conversations on real databases."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from parlant_runtime.cli import cli
from parlant_runtime.storage import migrate
from parlant_runtime.storage.sql.store import SqlStore

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"
MINIMAL = EXAMPLES / "minimal.yaml"
CLINIC = EXAMPLES / "clinic.yaml"
BANK = EXAMPLES / "bank_card.yaml"
BROKEN = ROOT / "tests" / "bundles" / "broken" / "dead_end.yaml"
NOT_YAML = ROOT / "tests" / "bundles" / "malformed" / "not_yaml.yaml"
CONSOLE = Path(sys.executable).parent / "parlant-runtime"
SESSION = re.compile(r"new session ([0-9a-f-]{36})")

BOOKING = """\
# books a visit in the minimal example
I'd like to book an appointment
/set day=Monday
Monday
"""


def chat(*args: str | Path, stdin: str | None = None) -> Result:
    return CliRunner().invoke(
        cli, ["chat", *(str(a) for a in args), "--no-color"], input=stdin, catch_exceptions=False
    )


def script(tmp_path: Path, text: str, name: str = "talk.chat") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'chat.db'}"


def session_of(result: Result) -> str:
    found = SESSION.search(result.stdout)
    assert found is not None, result.stdout
    return found.group(1)


def agents_in(url: str, workspace: str = "default") -> list[str]:
    async def work() -> list[str]:
        store = SqlStore.open(url)
        try:
            found = await store.find_agent(workspace, "Clinic assistant")
            return [] if found is None else ["Clinic assistant"]
        finally:
            await store.close()

    return asyncio.run(work())


# ---------------------------------------------------------------------- conversations


def test_a_script_books_a_visit_on_sqlite_created_on_first_use(tmp_path: Path) -> None:
    url = sqlite(tmp_path)
    result = chat(MINIMAL, "--script", script(tmp_path, BOOKING), "--database-url", url)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "created the database schema" in out
    assert "published agent 'Clinic assistant' (version 1)" in out
    assert "KeywordEvaluator" in out  # the banner says how conditions are decided
    assert "you> I'd like to book an appointment\nClinic assistant: Which day suits you?" in out
    assert "you> Monday\nClinic assistant: Booked for Monday. Anything else?" in out
    assert "# books" not in out  # comments are not part of the transcript
    assert (tmp_path / "chat.db").exists()


def test_the_second_run_publishes_nothing_and_a_changed_bundle_is_republished(
    tmp_path: Path,
) -> None:
    url = sqlite(tmp_path)
    talk = script(tmp_path, BOOKING)
    assert chat(MINIMAL, "--script", talk, "--database-url", url).exit_code == 0
    again = chat(MINIMAL, "--script", talk, "--database-url", url)
    assert again.exit_code == 0
    assert "agent 'Clinic assistant' unchanged at version 1" in again.stdout
    assert "created the database schema" not in again.stdout
    changed = tmp_path / "minimal.yaml"
    changed.write_text(
        MINIMAL.read_text(encoding="utf-8").replace("Which day suits you?", "What day?"),
        encoding="utf-8",
    )
    third = chat(changed, "--script", talk, "--database-url", url)
    assert third.exit_code == 0, third.output
    assert "republished agent 'Clinic assistant': version 2" in third.stdout
    assert "Clinic assistant: What day?" in third.stdout


@pytest.mark.postgres
def test_a_script_runs_on_postgresql(postgres_database: str, tmp_path: Path) -> None:
    talk = script(tmp_path, BOOKING)
    first = chat(MINIMAL, "--script", talk, "--database-url", postgres_database)
    assert first.exit_code == 0, first.output
    assert "created the database schema" in first.stdout
    assert "Clinic assistant: Booked for Monday. Anything else?" in first.stdout
    resumed = chat(
        MINIMAL,
        "--database-url",
        postgres_database,
        "--session",
        session_of(first),
        stdin="/state\nthanks\n",
    )
    assert resumed.exit_code == 0, resumed.output
    assert "at: Book a visit / confirm" in resumed.stdout
    assert "the journey ended at Book a visit/done" in resumed.stdout


def test_an_old_sqlite_file_is_upgraded(tmp_path: Path) -> None:
    url = sqlite(tmp_path)
    oldest = migrate.revisions()[0]
    upgrade = ["db", "upgrade", "--database-url", url, "--revision", oldest]
    assert CliRunner().invoke(cli, upgrade).exit_code == 0
    result = chat(MINIMAL, "--script", script(tmp_path, BOOKING), "--database-url", url)
    assert result.exit_code == 0, result.output
    assert f"upgraded the database schema from revision {oldest} to {migrate.head()}" in (
        result.stdout
    )


@pytest.mark.postgres
def test_a_postgresql_database_at_an_old_revision_is_not_upgraded(postgres_database: str) -> None:
    oldest = migrate.revisions()[0]
    upgrade = ["db", "upgrade", "--database-url", postgres_database, "--revision", oldest]
    assert CliRunner().invoke(cli, upgrade).exit_code == 0
    result = chat(MINIMAL, "--database-url", postgres_database, stdin="hello\n")
    assert result.exit_code == 2
    assert f"is at schema revision {oldest}, not {migrate.head()}" in result.stderr
    assert "run `parlant-runtime db upgrade --database-url" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.subprocess
def test_the_console_script_runs_the_demo_conversation(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            str(CONSOLE),
            "chat",
            str(CLINIC),
            "--script",
            str(EXAMPLES / "clinic.chat"),
            "--database-url",
            sqlite(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert "\x1b[" not in out  # not a terminal: no colours
    assert "Sorry, Monday is fully booked. The earliest free day is Wednesday." in out
    assert "On Wednesday we have 09:00, 11:30 free. Which time would you like?" in out
    assert "You're booked on Wednesday at 11:30. Your code is CL-1234. Anything else?" in out
    assert "suggest_other_day → check_availability p=200  taken" in out  # the traced turn
    assert out.count("┄ trace") == 1  # /trace off after that one turn
    assert "Traceback" not in completed.stderr


@pytest.mark.subprocess
def test_customer_lines_can_come_from_a_pipe(tmp_path: Path) -> None:
    completed = subprocess.run(
        [str(CONSOLE), "chat", str(MINIMAL), "--database-url", sqlite(tmp_path)],
        input="I'd like to book an appointment\n/set day=Friday\nFriday\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "you> Friday\nClinic assistant: Booked for Friday. Anything else?" in completed.stdout


def test_a_session_is_resumed_where_it_was_left(tmp_path: Path) -> None:
    url = sqlite(tmp_path)
    first = chat(MINIMAL, "--database-url", url, stdin="I'd like to book an appointment\n")
    assert first.exit_code == 0, first.output
    assert "Clinic assistant: Which day suits you?" in first.stdout
    session = session_of(first)
    assert f"resume with --session {session}" in first.stdout
    second = chat(
        MINIMAL, "--database-url", url, "--session", session, stdin="/set day=Tuesday\nTuesday\n"
    )
    assert second.exit_code == 0, second.output
    assert f"resumed session {session}: " in second.stdout
    assert "at Book a visit / ask_day" in second.stdout
    assert "Clinic assistant: Booked for Tuesday. Anything else?" in second.stdout
    assert "new session" not in second.stdout


def test_a_stored_agent_is_found_by_name_without_a_bundle(tmp_path: Path) -> None:
    url = sqlite(tmp_path)
    assert chat(MINIMAL, "--database-url", url, stdin="").exit_code == 0
    result = chat(
        "--agent", "Clinic assistant", "--database-url", url, stdin="book an appointment\n"
    )
    assert result.exit_code == 0, result.output
    assert "Clinic assistant: Which day suits you?" in result.stdout
    assert "published" not in result.stdout


# ---------------------------------------------------------------------- trace


def test_the_trace_says_where_the_turn_went_and_why(tmp_path: Path) -> None:
    result = chat(
        MINIMAL,
        "--trace",
        "--database-url",
        sqlite(tmp_path),
        stdin="I'd like to book an appointment\nI am not sure yet\n",
    )
    assert result.exit_code == 0, result.output
    first, second = result.stdout.split("┄ trace")[1:3]
    assert "at          Book a visit / ask_day" in first
    assert 'Book a visit: ✓ "customer wants to book an appointment" (natural)' in first
    assert "reply       state prompt of ask_day" in first
    # no day yet: the transition's expression is false, the session stays and asks again
    assert "ask_day → confirm  condition false  ✗ {{ vars.day is defined }}" in second
    assert "Clinic assistant: Which day suits you?" in result.stdout.split("┄ trace")[1]


def test_the_trace_shows_tools_guidelines_and_passed_over_responses(tmp_path: Path) -> None:
    talk = script(
        tmp_path,
        "/trace on\n"
        "/set department=dermatology\n"
        "I'd like to book an appointment\n"
        "/set day=Monday\n"
        "Monday\n"
        "what are your opening hours\n",
    )
    result = chat(CLINIC, "--script", talk, "--database-url", sqlite(tmp_path))
    assert result.exit_code == 0, result.output
    entering, booking, hours = result.stdout.split("┄ trace")[1:4]
    assert "skipped     Book a visit/ask_department: ✓ {{ vars.department is defined }}" in entering
    # no /tool given: check_slots fails, its fallback (null) sends the journey on
    assert "✗ check_slots failed, used its fallback: raised LookupError: no result given" in booking
    assert "slot_available → suggest_other_day p=1  taken  (no condition)" in booking
    assert 'passed over canned greeting: ✗ "customer greets the assistant"' in booking
    assert "guidelines  matched: opening_hours" in hours
    assert "emergency ✗" in hours


def test_the_trace_names_the_canned_response_a_strict_agent_sent(tmp_path: Path) -> None:
    result = chat(BANK, "--trace", "--database-url", sqlite(tmp_path), stdin="I lost my card\n")
    assert result.exit_code == 0, result.output
    assert "Card services assistant: To start, what are the last four digits" in result.stdout
    assert "reply       canned response ask_card\n" in result.stdout
    assert "guidelines  matched: never_ask_secrets" in result.stdout


# ---------------------------------------------------------------------- slash commands


def test_vars_never_shows_private_variables(tmp_path: Path) -> None:
    result = chat(
        BANK,
        "--database-url",
        sqlite(tmp_path),
        stdin='/set verification={"ok": true, "pin": "9876"} note=hello\nhello\n/vars\n',
    )
    assert result.exit_code == 0, result.output
    listed = result.stdout.split("you> /vars")[1]
    assert 'note = "hello"' in listed
    assert 'support_phone = "0800 015 4000"' in listed
    assert "verification" not in listed
    assert "9876" not in result.stdout


def test_modes_record_without_answering_and_auto_answers_what_is_pending(tmp_path: Path) -> None:
    result = chat(
        MINIMAL,
        "--database-url",
        sqlite(tmp_path),
        stdin="/mode manual\nbook an appointment\n/mode paused\nbook an appointment\n"
        "/human A colleague will call you back.\n/mode auto\n/state\n",
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "(Clinic assistant says nothing: the session is in manual mode)" in out
    assert "(Clinic assistant says nothing: the session is in paused mode)" in out
    assert "human agent: A colleague will call you back." in out
    after_auto = out.split("you> /mode auto")[1]
    assert "Clinic assistant: Which day suits you?" in after_auto
    assert "mode auto" in after_auto


def test_end_closes_the_session_and_starts_a_new_one(tmp_path: Path) -> None:
    url = sqlite(tmp_path)
    result = chat(MINIMAL, "--database-url", url, stdin="book an appointment\n/end\n/state\n")
    assert result.exit_code == 0, result.output
    old = session_of(result)
    assert f"session {old} completed" in result.stdout
    assert "at: no journey" in result.stdout
    closed = chat(MINIMAL, "--database-url", url, "--session", old, stdin="hello\n")
    assert closed.exit_code == 2
    assert f"session {old} is completed; leave out --session" in closed.stderr


def test_help_and_quit(tmp_path: Path) -> None:
    result = chat(
        MINIMAL, "--database-url", sqlite(tmp_path), stdin="/help\n/quit\nbook an appointment\n"
    )
    assert result.exit_code == 0, result.output
    assert "/trace on|off" in result.stdout
    assert "/mode auto|manual|paused" in result.stdout
    assert "Which day suits you?" not in result.stdout  # nothing after /quit is read


def test_a_bad_line_stops_a_script_at_its_line_number(tmp_path: Path) -> None:
    # stdin that is not a terminal is treated like a script: CliRunner cannot fake a TTY,
    # so the REPL's own path is covered by the pseudo-terminal test below
    talk = script(tmp_path, "/set day=Monday\n/frobnicate\nMonday\n")
    result = chat(MINIMAL, "--script", talk, "--database-url", sqlite(tmp_path))
    assert result.exit_code == 1
    assert f"{talk}:2: unknown command '/frobnicate'; /help lists the commands" in result.stderr
    assert "you> Monday" not in result.stdout  # the script stopped at the bad line


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("/trace maybe", "say /trace on or /trace off"),
        ("/mode sleepy", "say /mode auto, /mode manual or /mode paused"),
        ("/set day", "'day' is not KEY=VALUE"),
        ("/tool nope {}", "the agent has no tool 'nope'; its tools: none"),
    ],
)
def test_bad_commands_stop_a_script_with_their_line(
    tmp_path: Path, line: str, message: str
) -> None:
    talk = script(tmp_path, f"# first line\n{line}\n")
    result = chat(MINIMAL, "--script", talk, "--database-url", sqlite(tmp_path))
    assert result.exit_code == 1
    assert f"{talk}:2: {message}" in result.stderr
    assert "Traceback" not in result.output


def test_set_reads_json_text_and_quoted_values(tmp_path: Path) -> None:
    result = chat(
        CLINIC,
        "--database-url",
        sqlite(tmp_path),
        stdin='/set patient_name="Ada Lovelace" clinic_phone=1234 count=3 '
        'times=\'["09:00", "10:00"]\' day=Monday\nhello\n/vars\n',
    )
    assert result.exit_code == 0, result.output
    listed = result.stdout.split("you> /vars")[1]
    assert 'patient_name = "Ada Lovelace"' in listed
    assert 'clinic_phone = "1234"' in listed  # declared a string: the text as typed
    assert "count = 3" in listed
    assert 'times = ["09:00", "10:00"]' in listed
    assert 'day = "Monday"' in listed


def test_a_value_of_the_wrong_type_is_refused_and_nothing_is_sent(tmp_path: Path) -> None:
    talk = script(tmp_path, "/set verification=42\nhello\n")
    result = chat(BANK, "--script", talk, "--database-url", sqlite(tmp_path))
    assert result.exit_code == 1
    # verification is private: the error names it, never its value
    assert f"{talk}:2: not sent: variable 'verification': its value is not a object" in (
        result.stderr
    )
    assert "42 is not" not in result.stderr


def test_a_tool_result_given_with_tool_is_what_the_tool_returns(tmp_path: Path) -> None:
    talk = script(
        tmp_path,
        '/tool check_slots {"free": true, "times": ["10:15"]}\n/tool\n'
        "/set department=dermatology\nbook an appointment\n/set day=Monday\nMonday\n",
    )
    result = chat(CLINIC, "--script", talk, "--database-url", sqlite(tmp_path))
    assert result.exit_code == 0, result.output
    assert 'check_slots: returns {"free": true, "times": ["10:15"]}' in result.stdout
    assert "book_appointment: fails" in result.stdout
    assert "On Monday we have 10:15 free." in result.stdout


# ---------------------------------------------------------------------- errors


def test_a_bundle_with_errors_is_not_published_and_no_database_is_made(tmp_path: Path) -> None:
    result = chat(BROKEN, "--database-url", sqlite(tmp_path), stdin="hello\n")
    assert result.exit_code == 1
    assert "dead_end" in result.stderr
    assert "not published, chat not started: fix the errors above first" in result.stderr
    assert not (tmp_path / "chat.db").exists()


def test_an_unreadable_bundle_or_script_exits_2(tmp_path: Path) -> None:
    unreadable = chat(NOT_YAML, "--database-url", sqlite(tmp_path), stdin="")
    assert unreadable.exit_code == 2
    assert f"{NOT_YAML}: cannot read" in unreadable.stderr
    missing = chat(MINIMAL, "--script", tmp_path / "nope.chat", "--database-url", sqlite(tmp_path))
    assert missing.exit_code == 2
    assert "nope.chat: cannot read: No such file or directory" in missing.stderr
    binary = tmp_path / "binary.chat"
    binary.write_bytes(b"\xff\xfe\x00")
    garbled = chat(MINIMAL, "--script", binary, "--database-url", sqlite(tmp_path))
    assert garbled.exit_code == 2
    assert "not UTF-8 text" in garbled.stderr
    assert not (tmp_path / "chat.db").exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://postgres@127.0.0.1:1/nothing", "cannot open the database"),
        ("sqlite:///{tmp}/no/such/folder/chat.db", "does not exist"),
        ("mysql://localhost/db", "unsupported database URL scheme"),
    ],
)
def test_an_unusable_database_exits_2_without_a_traceback(
    tmp_path: Path, url: str, message: str
) -> None:
    result = chat(MINIMAL, "--database-url", url.format(tmp=tmp_path), stdin="hello\n")
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_unknown_or_foreign_sessions_and_missing_arguments_exit_2(tmp_path: Path) -> None:
    url = sqlite(tmp_path)
    unknown = chat(
        MINIMAL, "--database-url", url, "--session", "0" * 8 + "-0000-0000-0000-" + "0" * 12
    )
    assert unknown.exit_code == 2
    assert "session" in unknown.stderr
    garbage = chat(MINIMAL, "--database-url", url, "--session", "yesterday")
    assert garbage.exit_code == 2
    assert "--session 'yesterday' is not a session id" in garbage.stderr
    nothing = chat("--database-url", url)
    assert nothing.exit_code == 2
    assert "give a BUNDLE file, or --agent NAME" in nothing.output
    other = chat(MINIMAL, "--agent", "Bank", "--database-url", url)
    assert other.exit_code == 2
    assert "holds agent 'Clinic assistant', not 'Bank'" in other.stderr
    absent = chat("--agent", "Nobody", "--database-url", url)
    assert absent.exit_code == 2
    assert "has no agent named 'Nobody'" in absent.stderr


def test_a_bundle_that_would_strand_sessions_is_refused_with_the_way_out(tmp_path: Path) -> None:
    url = sqlite(tmp_path)
    assert chat(MINIMAL, "--database-url", url, stdin="book an appointment\n").exit_code == 0
    renamed = tmp_path / "minimal.yaml"
    renamed.write_text(
        MINIMAL.read_text(encoding="utf-8").replace("ask_day", "pick_day"), encoding="utf-8"
    )
    result = chat(renamed, "--database-url", url, stdin="hello\n")
    assert result.exit_code == 1
    err = result.stderr
    assert "not published, chat not started" in err
    assert "Book a visit/ask_day: 1 live session(s)" in err
    assert "--map 'Book a visit/ask_day=NEW_STATE'" in err
    assert "--force" in err
    # nothing changed: the old bundle still chats, unchanged
    again = chat(MINIMAL, "--database-url", url, stdin="")
    assert "unchanged at version 1" in again.stdout


# ---------------------------------------------------------------------- a real terminal


def _read_until(fd: int, wanted: bytes, timeout: float = 60.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{wanted!r} never came; got {seen.decode(errors='replace')}")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    return seen


def _wait_until_reading(pid: int, timeout: float = 30.0) -> None:
    """Wait until the child sleeps in readline's wait for input, not just past its prompt.

    CPython's readline shows the prompt, then calls select(); a SIGINT that lands
    between the two is noted but wakes nothing, and select() then waits for a key
    that never comes. A person cannot type that fast; a test can (the test hung
    now and then on a loaded machine). Where /proc tells what a process waits in,
    wait for select/poll; elsewhere, give it a moment.
    """
    wchan = Path(f"/proc/{pid}/wchan")
    if not wchan.exists():
        time.sleep(0.5)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting_in = wchan.read_text()
        if "select" in waiting_in or "poll" in waiting_in:
            return
        time.sleep(0.01)
    raise AssertionError(f"the chat never waited for input (it waits in {waiting_in!r})")


@pytest.mark.subprocess
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a pseudo-terminal")
@pytest.mark.parametrize("leave", [b"\x04", b"\x03"], ids=["ctrl-d", "ctrl-c"])
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_the_repl_in_a_pseudo_terminal(tmp_path: Path, leave: bytes) -> None:
    command = [str(CONSOLE), "chat", str(MINIMAL), "--database-url", sqlite(tmp_path)]
    pid, controller = pty.fork()  # the child gets the terminal as its controlling one
    if pid == 0:  # pragma: no cover (the child process)
        os.execve(command[0], command, {**os.environ, "TERM": "dumb"})
    try:
        assert b"/help lists the commands" in _read_until(controller, b"you> ")
        os.write(controller, b"I'd like to book an appointment\n")
        answer = _read_until(controller, b"you> ")
        assert b"Which day suits you?" in answer
        assert b"\x1b[" in answer  # a terminal: coloured
        os.write(controller, b"/frobnicate\n")
        assert b"unknown command '/frobnicate'" in _read_until(controller, b"you> ")
        _wait_until_reading(pid)
        os.write(controller, leave)  # Ctrl-D or Ctrl-C leaves, cleanly
        tail = _read_until(controller, b"resume with --session")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert b"Traceback" not in tail
    finally:
        with contextlib.suppress(ChildProcessError, ProcessLookupError):
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(controller)


def test_the_console_script_is_installed() -> None:
    assert CONSOLE.exists() or shutil.which("parlant-runtime") is not None


DERIVING = """\
agent: {name: Vault, compositionMode: fluid}
variables:
  - {key: secret, value: Qx7Vz4Jk9Wm2, isPrivate: true}
  - {key: name, value: Ada}
guidelines:
  - {name: upper, condition: "{{ {}[vars.secret | upper] }}", action: Never.}
  - {name: reversed, condition: "{{ {}[vars.secret[::-1]] == 1 }}", action: Never.}
  - {name: hello, action: "Hello {{ vars.name }}."}
"""


def test_trace_and_vars_show_nothing_derived_from_a_private_value(tmp_path: Path) -> None:
    bundle = tmp_path / "vault.yaml"
    bundle.write_text(DERIVING)
    talk = script(tmp_path, "hello\n/vars\n/set secret=Zz9Yy8Xx7Ww6\nagain\n/vars\n")
    result = chat(bundle, "--script", talk, "--trace", "--database-url", sqlite(tmp_path))
    assert result.exit_code == 0, result.output
    assert "depends on a private value" in result.output  # the trace says why, not what
    seen = result.output.casefold()
    for secret in ("Qx7Vz4Jk9Wm2", "Zz9Yy8Xx7Ww6"):
        for text in (secret.casefold(), secret[::-1].casefold()):
            pieces = {text[i : i + 4] for i in range(len(text) - 3)}
            assert not [piece for piece in pieces if piece in seen]
