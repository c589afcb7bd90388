"""Tool calls: registry, arguments, timeouts, retries, error handling and events.

Most of these are hostile tools (they hang, raise, ignore cancellation, or return
data that breaks their contract): each must end in an outcome with a clear error,
never in an exception that escapes the turn. Backoff goes through a fake sleep, so
only the tiny timeouts (20 ms) cost real time.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID, uuid4

import pytest

from parlant_runtime.bundle.schema import ToolSpec
from parlant_runtime.engine.tools import (
    PRIVATE_PLACEHOLDER,
    ErrorHandling,
    ToolArgumentError,
    ToolCall,
    ToolError,
    ToolOutcome,
    ToolRegistry,
    build_arguments,
    call_tool,
    current_call,
    private_argument_names,
    route,
    stable_call_id,
    tool_events,
    usage_deltas,
)
from parlant_runtime.engine.usage import Counter, Entity, UsageKey, wire
from parlant_runtime.errors import ParlantRuntimeError
from parlant_runtime.model import EventType

SLOTS_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "day": {"type": "string"},
        "department": {"type": "string", "enum": ["dermatology", "physiotherapy"]},
        "count": {"type": "integer"},
        "times": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["day", "department"],
}
SLOTS_RETURNS: dict[str, Any] = {
    "type": "object",
    "properties": {"slots": {"type": "array", "items": {"type": "string"}}},
    "required": ["slots"],
}


def make_tool(
    error_handling: dict[str, Any] | None = None,
    *,
    enabled: bool = True,
    return_schema: dict[str, Any] | None = SLOTS_RETURNS,
) -> ToolSpec:
    return ToolSpec.model_validate(
        {
            "name": "check_slots",
            "parameters": SLOTS_PARAMETERS,
            "returnSchema": return_schema,
            "errorHandling": error_handling or {},
            "enabled": enabled,
        }
    )


class FakeSleep:
    """Records the backoff delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def run_call(
    tool: ToolSpec,
    function: Callable[[dict[str, Any]], Awaitable[Any]] | None,
    arguments: dict[str, Any] | None = None,
    sleep: FakeSleep | None = None,
) -> ToolOutcome:
    return asyncio.run(
        call_tool(tool, function, arguments or {"day": "monday"}, sleep=sleep or FakeSleep())
    )


def build(arguments: dict[str, Any], variables: dict[str, Any] | None = None) -> dict[str, Any]:
    variables = variables or {}
    return build_arguments(
        make_tool(),
        {"arguments": arguments, "resultVariable": "slots"},
        {"vars": variables},
        variables,
    )


# ------------------------------------------------------------------ registry


def test_registering_a_name_twice_is_refused() -> None:
    registry = ToolRegistry()

    async def first(arguments: dict[str, Any]) -> Any:
        return 1

    registry.register("check_slots", first)
    with pytest.raises(ToolError, match="already registered for tool 'check_slots'"):
        registry.register("check_slots", first)
    assert issubclass(ToolError, ParlantRuntimeError)
    assert registry.get("check_slots") is first


def test_the_decorator_registers_and_returns_the_function() -> None:
    registry = ToolRegistry()

    @registry.tool("book")
    async def book(arguments: dict[str, Any]) -> dict[str, str]:
        return {"status": "confirmed"}

    @registry.tool("cancel")
    async def cancel(arguments: dict[str, Any]) -> bool:
        return True

    assert asyncio.run(book({})) == {"status": "confirmed"}  # still the plain function
    assert registry.get("book") is book
    assert registry.get("missing") is None
    assert registry.names() == ("book", "cancel")


def test_an_empty_tool_name_is_refused() -> None:
    async def function(arguments: dict[str, Any]) -> Any:
        return None

    with pytest.raises(ToolError, match="non-empty string"):
        ToolRegistry().register(" ", function)


# ------------------------------------------------------------------ arguments


def test_templates_render_and_a_single_expression_keeps_its_type() -> None:
    variables = {"day": "monday", "count": 3, "times": ["9:00", "9:30"], "dept": "derma"}
    arguments = build(
        {
            "day": "{{ vars.day }}",
            "count": "{{ vars.count }}",
            "times": " {{ vars.times }} ",
            "department": "{{ vars.dept }}tology",
        },
        variables,
    )
    assert arguments == {
        "day": "monday",
        "count": 3,
        "times": ["9:00", "9:30"],
        "department": "dermatology",
    }


def test_two_expressions_in_one_argument_render_as_text() -> None:
    arguments = build(
        {"day": "{{ vars.a }} {{ vars.b }}", "department": "dermatology"}, {"a": 1, "b": 2}
    )
    assert arguments["day"] == "1 2"


def test_literals_are_passed_as_they_are() -> None:
    arguments = build({"day": "next monday", "department": "physiotherapy", "count": 2})
    assert arguments == {"day": "next monday", "department": "physiotherapy", "count": 2}


def test_a_required_parameter_is_taken_from_the_variable_of_its_name() -> None:
    arguments = build({"day": "{{ vars.day }}"}, {"day": "friday", "department": "dermatology"})
    assert arguments == {"day": "friday", "department": "dermatology"}


def test_a_missing_required_parameter_is_named() -> None:
    with pytest.raises(ToolArgumentError, match="argument 'department' is required"):
        build({"day": "friday"})


def test_a_schema_violation_names_the_parameter_and_hides_the_value() -> None:
    with pytest.raises(ToolArgumentError) as caught:
        build(
            {"day": "friday", "department": "dermatology", "count": "{{ vars.n }}"}, {"n": "many"}
        )
    message = str(caught.value)
    assert "argument 'count'" in message
    assert "'type'" in message
    assert "many" not in message


def test_a_template_that_fails_names_the_argument() -> None:
    with pytest.raises(ToolArgumentError, match="argument 'day' of tool 'check_slots'"):
        build({"day": "{{ vars.nowhere }}", "department": "dermatology"})


def test_a_value_that_is_not_json_is_refused() -> None:
    with pytest.raises(ToolArgumentError, match=r"argument 'department' .* not JSON data"):
        build({"day": "friday"}, {"department": {"a", "b"}})


def test_private_values_may_be_passed_and_are_hidden_in_the_call_event() -> None:
    tool = make_tool()
    config = {"arguments": {"day": "{{ vars.day }}", "department": "{{ vars.secret_dept }}"}}
    variables = {"day": "friday", "secret_dept": "dermatology"}
    arguments = build_arguments(tool, config, {"vars": variables}, variables)
    assert arguments["department"] == "dermatology"

    private = private_argument_names(tool, config, {"secret_dept"})
    assert private == {"department"}
    outcome = ToolOutcome(
        tool="check_slots", tool_call_id="c1", arguments=arguments, ok=True,
        result={"slots": []}, error=None, attempts=1, duration_ms=1.0, timed_out=False,
    )  # fmt: skip
    call, _ = tool_events(outcome, None, None, private_arguments=private)
    assert call.content["arguments"] == {"day": "friday", "department": PRIVATE_PLACEHOLDER}
    assert "dermatology" not in repr(outcome)


def test_private_detection_is_conservative_for_indirect_reads() -> None:
    tool = make_tool()
    config = {"arguments": {"day": "{{ vars['secret'] }}", "count": "{{ vars.count }}"}}
    assert private_argument_names(tool, config, {"secret"}) == {"day"}
    assert private_argument_names(tool, {"arguments": {}}, {"department"}) == {"department"}
    assert private_argument_names(tool, config, set()) == frozenset()


# ------------------------------------------------------------------ calls


def test_a_tool_that_returns_on_time_succeeds_on_a_copy_of_the_arguments() -> None:
    async def slots(arguments: dict[str, Any]) -> dict[str, Any]:
        arguments["day"] = "changed by the tool"
        return {"slots": ["9:00"]}

    outcome = run_call(make_tool(), slots)
    assert outcome.ok
    assert outcome.advances
    assert outcome.result == {"slots": ["9:00"]}
    assert outcome.error is None
    assert outcome.attempts == 1
    assert not outcome.timed_out
    assert outcome.duration_ms >= 0
    assert outcome.arguments == {"day": "monday"}
    assert len(outcome.tool_call_id) == 32


def test_a_tool_that_hangs_times_out_retries_with_exponential_backoff_and_fails() -> None:
    calls = 0

    async def hangs(arguments: dict[str, Any]) -> Any:
        nonlocal calls
        calls += 1
        await asyncio.sleep(60)

    sleep = FakeSleep()
    tool = make_tool({"timeoutMs": 20, "retries": 3, "backoffMs": 100})
    outcome = run_call(tool, hangs, sleep=sleep)
    assert not outcome.ok
    assert not outcome.advances
    assert outcome.timed_out
    assert outcome.attempts == calls == 4
    assert outcome.error == "timed out after 20 ms (4 attempts)"
    assert sleep.delays == [0.1, 0.2, 0.4]


def test_backoff_is_capped_at_five_seconds() -> None:
    handling = ErrorHandling.parse({"retries": 5, "backoffMs": 1000})
    assert [handling.backoff_seconds(n) for n in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_a_tool_that_ignores_cancellation_is_abandoned_after_its_timeout() -> None:
    release = asyncio.Event()
    finished = False

    async def stubborn(arguments: dict[str, Any]) -> Any:
        nonlocal finished
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await release.wait()  # refuses to stop
        finished = True
        return {"slots": []}

    async def scenario() -> ToolOutcome:
        outcome = await call_tool(make_tool({"timeoutMs": 20}), stubborn, {}, sleep=FakeSleep())
        assert not finished
        release.set()
        for _ in range(5):
            await asyncio.sleep(0)
        assert finished
        return outcome

    outcome = asyncio.run(scenario())
    assert outcome.timed_out
    assert outcome.error == "timed out after 20 ms (1 attempt)"


def test_a_tool_that_raises_is_retried_then_fails_naming_the_exception() -> None:
    calls = 0

    async def raises(arguments: dict[str, Any]) -> Any:
        nonlocal calls
        calls += 1
        raise ValueError("the calendar is down")

    sleep = FakeSleep()
    outcome = run_call(make_tool({"retries": 2, "backoffMs": 50}), raises, sleep=sleep)
    assert not outcome.ok
    assert outcome.attempts == calls == 3
    assert not outcome.timed_out
    assert outcome.error == "raised ValueError: the calendar is down (3 attempts)"
    assert sleep.delays == [0.05, 0.1]


def test_a_timeout_error_raised_by_the_tool_is_not_a_timeout() -> None:
    async def raises(arguments: dict[str, Any]) -> Any:
        raise TimeoutError("upstream")

    outcome = run_call(make_tool(), raises)
    assert not outcome.timed_out
    assert outcome.error == "raised TimeoutError: upstream (1 attempt)"


def test_a_flaky_tool_that_recovers_on_retry_succeeds() -> None:
    answers: list[Any] = [{"slots": [5]}, {"slots": ["9:00"]}]

    async def flaky(arguments: dict[str, Any]) -> Any:
        return answers.pop(0)

    outcome = run_call(make_tool({"retries": 1}), flaky)
    assert outcome.ok
    assert outcome.attempts == 2
    assert outcome.result == {"slots": ["9:00"]}


def test_data_that_breaks_the_return_schema_is_an_error_with_its_path() -> None:
    async def bad(arguments: dict[str, Any]) -> Any:
        return {"slots": [5]}

    outcome = run_call(make_tool({"retries": 1}), bad)
    assert not outcome.ok
    assert outcome.attempts == 2
    assert outcome.result is None
    assert outcome.error == (
        "returned data that breaks its return schema at $.slots[0]: "
        "5 is not of type 'string' (2 attempts)"
    )


def test_a_result_that_is_not_json_is_an_error() -> None:
    async def returns_a_set(arguments: dict[str, Any]) -> Any:
        return {"a", "b"}

    outcome = run_call(make_tool(return_schema=None), returns_a_set)
    assert not outcome.ok
    assert outcome.error is not None
    assert "returned data that is not JSON" in outcome.error
    assert "set" in outcome.error


def test_a_result_too_big_for_a_variable_is_an_error() -> None:
    async def huge(arguments: dict[str, Any]) -> Any:
        return "x" * 100_000

    outcome = run_call(make_tool(return_schema=None), huge)
    assert not outcome.ok
    assert outcome.error is not None
    assert "more than a variable holds" in outcome.error


def test_on_error_fallback_supplies_the_result_and_advances() -> None:
    async def raises(arguments: dict[str, Any]) -> Any:
        raise RuntimeError("down")

    tool = make_tool({"onError": "fallback", "fallback": {"slots": []}})
    outcome = run_call(tool, raises)
    assert not outcome.ok
    assert outcome.fell_back
    assert outcome.advances
    assert outcome.result == {"slots": []}
    assert outcome.error == "raised RuntimeError: down (1 attempt)"
    _, result = tool_events(outcome, None, None)
    assert result.content["result"] == {"slots": []}
    assert result.content["error"] == outcome.error
    assert result.content["fell_back"] is True


def test_a_missing_function_fails_without_a_call() -> None:
    outcome = run_call(make_tool(), None)
    assert not outcome.ok
    assert outcome.attempts == 0
    assert outcome.error == (
        "no function is registered for tool 'check_slots'; register one with ToolRegistry.register"
    )
    assert usage_deltas(outcome, uuid4()) == {}


def test_a_disabled_tool_is_not_called() -> None:
    called = False

    async def function(arguments: dict[str, Any]) -> Any:
        nonlocal called
        called = True
        return {"slots": []}

    outcome = run_call(make_tool(enabled=False), function)
    assert not outcome.ok
    assert not called
    assert outcome.attempts == 0
    assert outcome.error is not None
    assert "disabled" in outcome.error


def test_cancellation_raised_by_the_tool_propagates_without_retry() -> None:
    calls = 0

    async def cancelled(arguments: dict[str, Any]) -> Any:
        nonlocal calls
        calls += 1
        raise asyncio.CancelledError

    async def scenario() -> None:
        with pytest.raises(asyncio.CancelledError):
            await call_tool(make_tool({"retries": 3}), cancelled, {}, sleep=FakeSleep())

    asyncio.run(scenario())
    assert calls == 1


def test_cancelling_the_caller_propagates_and_cancels_the_tool() -> None:
    started = asyncio.Event()
    stopped = asyncio.Event()

    async def hangs(arguments: dict[str, Any]) -> Any:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            stopped.set()
            raise

    async def scenario() -> None:
        task = asyncio.create_task(call_tool(make_tool(), hangs, {}, sleep=FakeSleep()))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(stopped.wait(), timeout=5)

    asyncio.run(scenario())
    assert stopped.is_set()


# ------------------------------------------------------------------ events and usage


def test_call_and_result_events_share_the_tool_call_id() -> None:
    async def slots(arguments: dict[str, Any]) -> Any:
        return {"slots": ["9:00"]}

    outcome = run_call(make_tool(), slots)
    journey_id, state_id = uuid4(), uuid4()
    call, result = tool_events(outcome, journey_id, state_id)
    assert call.event_type is EventType.TOOL_CALL
    assert result.event_type is EventType.TOOL_RESULT
    assert call.tool_call_id == result.tool_call_id == outcome.tool_call_id
    assert call.journey_id == result.journey_id == journey_id
    assert call.state_id == result.state_id == state_id
    assert call.content == {"tool": "check_slots", "arguments": {"day": "monday"}}
    assert result.content == {
        "tool": "check_slots",
        "ok": True,
        "attempts": 1,
        "duration_ms": outcome.duration_ms,
        "timed_out": False,
        "result": {"slots": ["9:00"]},
    }


def test_a_failed_call_records_its_error_and_no_result() -> None:
    outcome = run_call(make_tool(), None)
    _, result = tool_events(outcome, None, None)
    assert result.content["ok"] is False
    assert result.content["error"] == outcome.error
    assert "result" not in result.content


def test_a_call_that_ran_counts_one_use_in_the_storage_key_format() -> None:
    async def raises(arguments: dict[str, Any]) -> Any:
        raise ValueError

    tool_id = UUID(int=7)
    outcome = run_call(make_tool({"retries": 2}), raises)
    assert wire(usage_deltas(outcome, tool_id)) == {f"tool:{tool_id}:use_count": 1}


def test_a_failed_call_counts_one_error_on_the_integration_it_went_to() -> None:
    async def raises(arguments: dict[str, Any]) -> Any:
        raise ValueError

    async def works(arguments: dict[str, Any]) -> Any:
        return {"slots": []}

    tool_id, integration_id = UUID(int=7), UUID(int=8)
    failed = run_call(make_tool({"retries": 2}), raises)
    used = UsageKey(Entity.TOOL, tool_id, Counter.USE_COUNT)
    failure = UsageKey(Entity.TOOL_INTEGRATION, integration_id, Counter.ERROR_COUNT)
    assert usage_deltas(failed, tool_id, integration_id) == {used: 1, failure: 1}
    fell_back = run_call(make_tool({"onError": "fallback"}), raises)
    assert failure in usage_deltas(fell_back, tool_id, integration_id)
    ok = run_call(make_tool(), works)
    assert usage_deltas(ok, tool_id, integration_id) == {used: 1}


def test_a_call_goes_to_the_first_enabled_integration() -> None:
    tool = ToolSpec.model_validate(
        {
            "name": "t",
            "integrations": [
                {"integrationType": "mcp_server", "targetId": "a", "enabled": False},
                {"integrationType": "custom_tool", "targetId": "b"},
                {"integrationType": "workflow_block", "targetId": "c"},
            ],
        }
    )
    routed = route(tool)
    assert routed is not None
    assert routed.target_id == "b"
    assert route(make_tool()) is None


# ------------------------------------------------------------------ errorHandling


def test_error_handling_defaults() -> None:
    assert ErrorHandling.parse({}) == ErrorHandling(
        timeout_ms=5000, retries=0, backoff_ms=100, on_error="fail", fallback=None
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"timeoutMs": 0}, "errorHandling.timeoutMs must be a whole number from 1 to 120000"),
        ({"timeoutMs": 120_001}, "errorHandling.timeoutMs must be"),
        ({"timeoutMs": "5000"}, "errorHandling.timeoutMs must be"),
        ({"timeoutMs": 2.5}, "errorHandling.timeoutMs must be"),
        ({"retries": 6}, "errorHandling.retries must be a whole number from 0 to 5"),
        ({"retries": True}, "errorHandling.retries must be"),
        ({"backoffMs": -1}, "errorHandling.backoffMs must be"),
        ({"onError": "ignore"}, "errorHandling.onError must be 'fail' or 'fallback'"),
        ({"timeOutMs": 10}, "unknown key.*'timeOutMs'.*timeoutMs"),
        ({"fallback": {1, 2}}, "errorHandling.fallback must be JSON data"),
    ],
)
def test_bad_error_handling_is_refused_with_a_clear_message(
    raw: dict[str, Any], message: str
) -> None:
    with pytest.raises(ToolError, match=message):
        ErrorHandling.parse(raw)


def test_a_tool_with_bad_error_handling_is_not_called() -> None:
    called = False

    async def function(arguments: dict[str, Any]) -> Any:
        nonlocal called
        called = True

    outcome = run_call(make_tool({"retries": 99}), function)
    assert not called
    assert not outcome.ok
    assert outcome.error is not None
    assert "errorHandling.retries" in outcome.error


def test_an_invalid_return_schema_is_an_error_without_a_call() -> None:
    async def function(arguments: dict[str, Any]) -> Any:
        return {}

    outcome = run_call(make_tool(return_schema={"type": "nonsense"}), function)
    assert not outcome.ok
    assert outcome.attempts == 0
    assert outcome.error is not None
    assert "returnSchema of tool 'check_slots' is not a valid JSON Schema" in outcome.error


def test_an_unresolvable_ref_in_the_return_schema_is_an_error_not_an_exception() -> None:
    async def function(arguments: dict[str, Any]) -> Any:
        return {}

    outcome = run_call(make_tool(return_schema={"$ref": "#/$defs/missing"}), function)
    assert not outcome.ok
    assert outcome.error is not None
    assert "the returnSchema cannot be used" in outcome.error


def test_an_unresolvable_ref_in_the_parameters_is_an_argument_error() -> None:
    tool = ToolSpec.model_validate(
        {"name": "check_slots", "parameters": {"$ref": "http://example.com/schema"}}
    )
    with pytest.raises(ToolArgumentError, match="parameters schema of tool 'check_slots'"):
        build_arguments(tool, {"arguments": {}}, {}, {})


def test_null_arguments_mean_none_configured() -> None:
    variables = {"day": "friday", "department": "dermatology"}
    arguments = build_arguments(make_tool(), {"arguments": None}, {"vars": variables}, variables)
    assert arguments == variables


def test_duration_is_measured_with_the_injected_clock() -> None:
    ticks = iter([10.0, 10.25])

    async def slots(arguments: dict[str, Any]) -> Any:
        return {"slots": []}

    outcome = asyncio.run(
        call_tool(make_tool(), slots, {}, clock=lambda: next(ticks), sleep=FakeSleep())
    )
    assert outcome.duration_ms == 250.0


# ------------------------------------------------------------------ call ids


def test_a_tool_sees_its_call_id_on_every_attempt_and_only_inside_the_call() -> None:
    seen: list[ToolCall | None] = []

    async def flaky(arguments: dict[str, Any]) -> Any:
        seen.append(current_call())
        if len(seen) == 1:
            raise RuntimeError("try again")
        return {"slots": []}

    outcome = asyncio.run(
        call_tool(
            make_tool({"retries": 1}), flaky, {"day": "monday"}, call_id="abc", sleep=FakeSleep()
        )
    )
    assert outcome.ok
    assert outcome.tool_call_id == "abc"
    assert seen == [ToolCall("abc", "check_slots", 1), ToolCall("abc", "check_slots", 2)]
    assert current_call() is None


def test_a_stable_call_id_depends_on_the_turn_the_tool_its_ordinal_and_its_arguments() -> None:
    base = stable_call_id("turn-1", "check_slots", 0, {"day": "monday", "n": 1})
    assert base == stable_call_id("turn-1", "check_slots", 0, {"n": 1, "day": "monday"})
    others = {
        stable_call_id("turn-2", "check_slots", 0, {"day": "monday", "n": 1}),
        stable_call_id("turn-1", "book", 0, {"day": "monday", "n": 1}),
        stable_call_id("turn-1", "check_slots", 1, {"day": "monday", "n": 1}),
        stable_call_id("turn-1", "check_slots", 0, {"day": "tuesday", "n": 1}),
    }
    assert base not in others
    assert len(others) == 4


# ------------------------------------------------------------------ process exits


class _Escape(BaseException):
    """A BaseException of the tool's own that is not an Exception."""


def _exits(kind: str) -> Callable[[dict[str, Any]], Awaitable[Any]]:
    async def tool(arguments: dict[str, Any]) -> Any:
        await asyncio.sleep(0)
        if kind == "sys.exit":
            sys.exit(3)
        if kind == "KeyboardInterrupt":
            raise KeyboardInterrupt
        if kind == "GeneratorExit":
            raise GeneratorExit
        raise _Escape("out")

    return tool


@pytest.mark.parametrize("kind", ["sys.exit", "KeyboardInterrupt", "GeneratorExit", "own"])
def test_a_tool_that_exits_fails_as_a_tool_and_stops_nothing_else(kind: str) -> None:
    """``sys.exit`` in a tool used to stop the event loop, and every session with it."""
    ticks = 0

    async def other_session() -> None:
        nonlocal ticks
        for _ in range(20):
            await asyncio.sleep(0.001)
            ticks += 1

    async def scenario() -> ToolOutcome:
        neighbour = asyncio.create_task(other_session())
        tool = make_tool({"retries": 1, "onError": "fallback", "fallback": {"slots": []}})
        outcome = await call_tool(tool, _exits(kind), {"day": "monday"}, sleep=FakeSleep())
        await neighbour
        return outcome

    try:
        outcome = asyncio.run(scenario())
    except BaseException as exc:  # what escaped is the failure under test
        pytest.fail(f"{type(exc).__name__} escaped the tool call and stopped the loop")
    assert ticks == 20
    assert not outcome.ok
    assert outcome.attempts == 2  # retried like any failure
    assert outcome.fell_back
    assert outcome.result == {"slots": []}
    assert outcome.error is not None
    name = {"sys.exit": "SystemExit", "own": "_Escape"}.get(kind, kind)
    assert outcome.error.startswith(f"raised {name}"), outcome.error
