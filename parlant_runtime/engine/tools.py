"""Calling a tool state's tool without letting the tool break the turn.

A tool state (architecture, "Turn semantics" step 4) runs code the runtime does not
own: it may hang, raise, or return data that breaks its contract. This module builds
the arguments (``toolConfig`` and variables, checked against ``parameters``), runs the
registered async function under a timeout with retries, checks the result (JSON data,
at most a variable's size, ``returnSchema``) and reports a :class:`ToolOutcome`. It
never raises for what the tool does, so a bad tool yields a clear error event and the
session stays intact; only cancellation of the caller propagates.

``errorHandling`` (:meth:`ErrorHandling.parse`): ``timeoutMs`` (5000, 1..120000),
``retries`` (0, 0..5), ``backoffMs`` (100, 0..5000; the wait before retry *n* is
``backoffMs * 2**n``, at most 5 s), ``onError`` (``fail``: the state does not advance
and the turn records the error; ``fallback``: the result becomes ``fallback``, default
``null``, and the journey goes on). Unknown keys are refused, so that a typo such as
``timeOutMs`` surfaces instead of silently meaning the default. ``onError`` applies
to every failed call, a disabled tool and a missing function included.

Reporting: :func:`tool_events` gives the ``tool_call``/``tool_result`` pair,
:func:`usage_deltas` the usage deltas for ``TurnCommit.usage`` (the tool's
``use_count`` when its function ran; the ``error_count`` of the integration the call
went to, :func:`route`, when it then failed), and ``outcome.advances`` says whether
the state moves on. Success rate and health derive from those counters
(:mod:`parlant_runtime.engine.health`); this module writes nothing.

Tool functions must be ``async`` and honour cancellation (blocking code belongs in
``asyncio.to_thread``); one that ignores it is abandoned after a short grace period.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import functools
import hashlib
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast
from uuid import UUID

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError, best_match

from parlant_runtime.bundle.schema import ToolIntegrationSpec, ToolSpec
from parlant_runtime.bundle.source import did_you_mean
from parlant_runtime.engine.usage import Counter, Entity, Usage, UsageKey
from parlant_runtime.errors import ParlantRuntimeError, TemplateSandboxError
from parlant_runtime.model import EventType
from parlant_runtime.sandbox import (
    analyse,
    compile_expression,
    compile_template,
    expression_source,
    has_template_syntax,
)
from parlant_runtime.storage.port import MAX_VARIABLE_BYTES, NewEvent
from parlant_runtime.telemetry import Attributes
from parlant_runtime.telemetry import current as telemetry_now

__all__ = [
    "PRIVATE_PLACEHOLDER",
    "ErrorHandling",
    "ToolArgumentError",
    "ToolCall",
    "ToolError",
    "ToolFailure",
    "ToolFunction",
    "ToolOutcome",
    "ToolRegistry",
    "build_arguments",
    "call_tool",
    "current_call",
    "private_argument_names",
    "reads_private",
    "route",
    "stable_call_id",
    "tool_events",
    "usage_deltas",
]

ToolFunction = Callable[[dict[str, Any]], Awaitable[Any]]
"""An async callable that takes the arguments as a dict and returns JSON data."""

PRIVATE_PLACEHOLDER = "[private]"
"""What a ``tool_call`` event shows instead of an argument fed by a private variable."""

MAX_BACKOFF_SECONDS = 5.0
_CANCEL_GRACE_SECONDS = 0.1  # how long a timed-out function may take to honour cancellation
_MAX_DETAIL_CHARS = 300
_PRIVATE_DETAIL = "(details hidden: they may depend on a private value)"
_LIMITS = {"timeoutMs": (5000, 1, 120_000), "retries": (0, 0, 5), "backoffMs": (100, 0, 5_000)}
_KEYS = ("backoffMs", "fallback", "onError", "retries", "timeoutMs")
_F = TypeVar("_F", bound=ToolFunction)


class ToolError(ParlantRuntimeError):
    """A tool is set up wrongly: registered twice, a bad ``errorHandling`` or schema."""


class ToolArgumentError(ToolError):
    """A tool's arguments cannot be built or break its ``parameters`` schema."""


class ToolFailure(ParlantRuntimeError):
    """Raise from a tool function to fail with a message that is always shown.

    When a call carries a private value (an argument, or a private
    ``resultVariable``), the message of an exception the tool raises is hidden, since
    it may quote the value; a ``ToolFailure``'s message is kept, so word it without
    the call's values (``"the card is blocked"``, not ``f"card {number} blocked"``).
    """


class ToolRegistry:
    """The async functions that carry out tools, by tool name."""

    def __init__(self) -> None:
        self._functions: dict[str, ToolFunction] = {}

    def register(self, name: str, function: ToolFunction) -> None:
        """Register ``function`` for the tool called ``name``.

        Raises:
            ToolError: the name is empty, the function is not callable, or a function
                is already registered for the name.
        """
        if not isinstance(name, str) or not name.strip():
            raise ToolError(f"a tool name must be a non-empty string, not {name!r}")
        if not callable(function):
            raise ToolError(f"the function for tool {name!r} is not callable: {function!r}")
        if name in self._functions:
            raise ToolError(
                f"a function is already registered for tool {name!r}; register each tool once"
            )
        self._functions[name] = function

    def tool(self, name: str) -> Callable[[_F], _F]:
        """Decorator form of :meth:`register`: ``@registry.tool("check_slots")``."""

        def decorate(function: _F) -> _F:
            self.register(name, function)
            return function

        return decorate

    def get(self, name: str) -> ToolFunction | None:
        """The function registered for ``name``, or ``None``."""
        return self._functions.get(name)

    def names(self) -> tuple[str, ...]:
        """The registered tool names, sorted."""
        return tuple(sorted(self._functions))


@dataclass(frozen=True, slots=True)
class ErrorHandling:
    """A tool's ``errorHandling``, checked (see the module docstring for the keys)."""

    timeout_ms: int = 5000
    retries: int = 0
    backoff_ms: int = 100
    on_error: Literal["fail", "fallback"] = "fail"
    fallback: Any = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> ErrorHandling:
        """Parse the JSON object, filling defaults.

        Raises:
            ToolError: an unknown key or a value out of range, named with what is allowed
                (every problem of the object, see :meth:`problems`).
        """
        problems = cls.problems(raw)
        if problems:
            raise ToolError("; ".join(problems))
        numbers = {key: raw.get(key, default) for key, (default, _, _) in _LIMITS.items()}
        return cls(
            timeout_ms=numbers["timeoutMs"],
            retries=numbers["retries"],
            backoff_ms=numbers["backoffMs"],
            on_error=cast(Literal["fail", "fallback"], raw.get("onError", "fail")),
            fallback=_json_copy(raw.get("fallback"))[0],
        )

    @staticmethod
    def problems(raw: Mapping[str, Any]) -> list[str]:
        """Everything wrong with an ``errorHandling`` object, each with its fix (a typo
        gets a did-you-mean); empty when :meth:`parse` would accept it. ``validate``
        reports these before any tool runs."""
        found: list[str] = []
        for key in sorted(set(raw) - set(_KEYS)):
            close = did_you_mean(str(key), _KEYS)
            hint = f"did you mean {close!r}?" if close else f"the keys are {', '.join(_KEYS)}"
            found.append(f"errorHandling has an unknown key {key!r}; {hint}")
        for key, (default, low, high) in _LIMITS.items():
            value = raw.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                found.append(
                    f"errorHandling.{key} must be a whole number from {low} to {high}, "
                    f"not {value!r}"
                )
        on_error = raw.get("onError", "fail")
        if on_error not in ("fail", "fallback"):
            close = (
                did_you_mean(on_error, ("fail", "fallback")) if isinstance(on_error, str) else None
            )
            hint = f"; did you mean {close!r}?" if close else ""
            found.append(
                f"errorHandling.onError must be 'fail' or 'fallback', not {on_error!r}{hint}"
            )
        try:
            _json_copy(raw.get("fallback"))
        except ValueError as exc:
            found.append(f"errorHandling.fallback must be JSON data: {exc}")
        return found

    def backoff_seconds(self, retry: int) -> float:
        """The wait before retry ``retry`` (0 for the first): exponential, capped."""
        return min(self.backoff_ms * (1 << retry) / 1000, MAX_BACKOFF_SECONDS)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The call a tool function is serving, from :func:`current_call`."""

    call_id: str
    """Stable for one logical call: the same when the call is made again (see
    :func:`stable_call_id`). A tool with side effects dedupes on it."""
    tool: str
    attempt: int
    """1 for the first attempt, then 2, 3, ... for ``errorHandling`` retries."""
    integration: ToolIntegrationSpec | None = None
    """Where the call goes (:func:`route`): the tool's first enabled integration."""


def route(tool: ToolSpec) -> ToolIntegrationSpec | None:
    """The integration a call of ``tool`` goes to: its first enabled one, in bundle order
    (``None`` without one). Its ``error_count`` counts the calls that failed."""
    return next((i for i in tool.integrations if i.enabled), None)


_CURRENT_CALL: contextvars.ContextVar[ToolCall | None] = contextvars.ContextVar(
    "parlant_runtime_tool_call", default=None
)


def current_call() -> ToolCall | None:
    """Inside a tool function: the call it serves (its idempotency key); else ``None``."""
    return _CURRENT_CALL.get()


def stable_call_id(turn_key: str, tool: str, ordinal: int, arguments: Mapping[str, Any]) -> str:
    """The id of a logical tool call: the same turn (``turn_key``: the session and the
    message's idempotency key, or one process_message call), the same tool, its
    ``ordinal``-th call in the turn, with the same arguments. A turn computed again
    (another process committed first) makes the same calls with the same ids, so a
    tool that remembers the ids it has done can skip the repeat."""
    text = json.dumps([turn_key, tool, ordinal, arguments], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What one tool call came to. Arguments and result stay out of ``repr``."""

    tool: str
    tool_call_id: str
    arguments: dict[str, Any] = field(repr=False)
    ok: bool
    result: Any = field(repr=False)
    error: str | None
    attempts: int
    """Times the function was called (0 when it never ran)."""
    duration_ms: float
    timed_out: bool
    """Whether the last attempt timed out."""
    fell_back: bool = False
    """The call failed and ``onError: fallback`` supplied the result."""

    @property
    def advances(self) -> bool:
        """Whether the tool state moves on (the result lands in the result variable)."""
        return self.ok or self.fell_back


def build_arguments(
    tool: ToolSpec,
    tool_config: Mapping[str, Any],
    template_context: Mapping[str, Any],
    variables: Mapping[str, Any],
    *,
    private_arguments: Collection[str] = (),
) -> dict[str, Any]:
    """The arguments of a call, built from ``toolConfig.arguments`` and the variables.

    A string with template syntax is run in the sandbox: a single ``{{ expr }}``
    keeps the expression's type (a number stays a number), anything else becomes
    the rendered text. Other values are passed as they are. A required parameter
    with no argument takes the variable of the same name, if there is one. Private
    variables may feed arguments (see :func:`private_argument_names`).

    Raises:
        ToolArgumentError: a template fails, a value is not JSON data, or the
            arguments break ``tool.parameters``; the message names the argument
            but never shows its value. For ``private_arguments`` (those that may carry
            a private value, :func:`private_argument_names`) it says what failed but
            not the detail, which may quote a value derived from a private one.
    """
    configured = tool_config.get("arguments") or {}
    if not isinstance(configured, Mapping):
        raise ToolArgumentError(f"toolConfig.arguments of tool {tool.name!r} must be an object")
    arguments: dict[str, Any] = {}
    sources = [(name, value, True) for name, value in configured.items()]
    sources += [
        (n, variables[n], False) for n in _required(tool) - set(configured) if n in variables
    ]
    for name, value, from_config in sources:
        where = f"argument {name!r} of tool {tool.name!r}"
        private = name in private_arguments
        try:
            built = _argument_value(value, template_context) if from_config else value
            arguments[name] = _json_copy(built)[0]
        except TemplateSandboxError as exc:
            if private:
                raise ToolArgumentError(f"{where} cannot be built {_PRIVATE_DETAIL}") from None
            raise ToolArgumentError(f"{where}: {exc}") from exc
        except ValueError as exc:
            if private:
                raise ToolArgumentError(f"{where} is not JSON data {_PRIVATE_DETAIL}") from None
            raise ToolArgumentError(f"{where} is not JSON data: {exc}") from exc
    what = f"parameters schema of tool {tool.name!r}"
    validator = _validator(tool.parameters, what, ToolArgumentError)
    errors = _schema_errors(validator, arguments, what, ToolArgumentError)
    problems = sorted(_argument_problem(e, private_arguments) for e in errors)
    if problems:
        raise ToolArgumentError(
            f"arguments of tool {tool.name!r} break its parameters schema: " + "; ".join(problems)
        )
    return arguments


def private_argument_names(
    tool: ToolSpec, tool_config: Mapping[str, Any], private_keys: Collection[str]
) -> frozenset[str]:
    """Arguments that may carry a private variable's value (to hide in events).

    Conservative: a template that reads ``vars`` other than as ``vars.<name>``
    (``vars['x']``, ``vars.get(...)``, ``vars`` itself) counts as private whenever
    there is any private variable.
    """
    if not private_keys:
        return frozenset()
    configured = tool_config.get("arguments") or {}
    configured = configured if isinstance(configured, Mapping) else {}
    names = {n for n in _required(tool) - set(configured) if n in private_keys}
    for name, value in configured.items():
        if (
            isinstance(value, str)
            and has_template_syntax(value)
            and reads_private(value, private_keys)
        ):
            names.add(name)
    return frozenset(names)


async def call_tool(
    tool: ToolSpec,
    function: ToolFunction | None,
    arguments: dict[str, Any],
    *,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    call_id: str | None = None,
    private: bool = False,
) -> ToolOutcome:
    """Call ``function`` with timeouts, retries and the tool's ``errorHandling``.

    Never raises for what the tool does (an exception, a hang, bad data): the
    outcome says what happened. ``asyncio.CancelledError`` propagates. ``call_id``
    (random when ``None``) is the outcome's tool call id and what the function sees
    in :func:`current_call`, the same on every retry. With ``private`` (an argument
    carries a private value, or the result goes to a private variable) the error
    says what kind of failure it was but never quotes the result, the data or the
    tool's exception message, which may hold those values.

    The call is a ``parlant.tool`` span and counts in the tool metrics
    (:mod:`parlant_runtime.telemetry`): the tool's name and how the call went, never
    its arguments, result or error.
    """
    telemetry = telemetry_now()
    with telemetry.span("parlant.tool", {"parlant.tool.name": tool.name}) as span:
        outcome = await _call_tool(
            tool, function, arguments, clock=clock, sleep=sleep, call_id=call_id, private=private
        )
        if telemetry.on:
            span.set_attribute("parlant.tool.ok", outcome.ok)
            span.set_attribute("parlant.tool.attempts", outcome.attempts)
            span.set_attribute("parlant.tool.timed_out", outcome.timed_out)
            span.set_attribute("parlant.tool.fell_back", outcome.fell_back)
            measured: Attributes = {"parlant.tool.name": tool.name, "parlant.tool.ok": outcome.ok}
            telemetry.tool_calls.add(1, measured)
            telemetry.tool_duration.record(outcome.duration_ms / 1000, measured)
    return outcome


async def _call_tool(
    tool: ToolSpec,
    function: ToolFunction | None,
    arguments: dict[str, Any],
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
    call_id: str | None,
    private: bool,
) -> ToolOutcome:
    started, call_id = clock(), call_id or uuid.uuid4().hex
    attempts, timed_out, result = 0, False, None
    handling, returns, problem = ErrorHandling(), None, _not_callable(tool, function)
    try:
        handling = ErrorHandling.parse(tool.error_handling)
        if tool.return_schema is not None:
            returns = _validator(tool.return_schema, f"returnSchema of tool {tool.name!r}")
    except ToolError as exc:
        problem = f"tool {tool.name!r} cannot be called: {exc}"
    if problem is None and function is not None:
        for retry in range(handling.retries + 1):
            if retry:
                await sleep(handling.backoff_seconds(retry - 1))
            attempts += 1
            token = _CURRENT_CALL.set(ToolCall(call_id, tool.name, attempts, route(tool)))
            try:  # the attempt's task copies the context when it is created
                result, problem, timed_out = await _try_once(
                    function, arguments, handling, returns, private=private
                )
            finally:
                _CURRENT_CALL.reset(token)
            if problem is None:
                break
        else:
            problem = f"{problem} ({attempts} attempt{'' if attempts == 1 else 's'})"
    fell_back = problem is not None and handling.on_error == "fallback"
    return ToolOutcome(
        tool=tool.name,
        tool_call_id=call_id,
        arguments=arguments,
        ok=problem is None,
        result=copy.deepcopy(handling.fallback) if fell_back else result,
        error=problem,
        attempts=attempts,
        duration_ms=round((clock() - started) * 1000, 3),
        timed_out=timed_out,
        fell_back=fell_back,
    )


def tool_events(
    outcome: ToolOutcome,
    journey_id: UUID | None,
    state_id: UUID | None,
    *,
    private_arguments: Collection[str] = (),
    private_result: bool = False,
) -> list[NewEvent]:
    """The ``tool_call`` and ``tool_result`` events of a call, sharing its tool call id.

    Arguments named in ``private_arguments`` show as :data:`PRIVATE_PLACEHOLDER`; with
    ``private_result`` (the result goes to a private variable) the result is left out
    and ``"private": true`` says so.
    """
    shown = {
        name: PRIVATE_PLACEHOLDER if name in private_arguments else value
        for name, value in outcome.arguments.items()
    }
    result: dict[str, Any] = {"tool": outcome.tool, "ok": outcome.ok, "attempts": outcome.attempts}
    result |= {"duration_ms": outcome.duration_ms, "timed_out": outcome.timed_out}
    if outcome.advances and private_result:
        result["private"] = True
    elif outcome.advances:
        result["result"] = outcome.result
    if outcome.error is not None:
        result["error"] = outcome.error
    if outcome.fell_back:
        result["fell_back"] = True
    ids = {"tool_call_id": outcome.tool_call_id, "journey_id": journey_id, "state_id": state_id}
    call = {"tool": outcome.tool, "arguments": shown}
    return [
        NewEvent.model_validate({"event_type": EventType.TOOL_CALL, "content": call, **ids}),
        NewEvent.model_validate({"event_type": EventType.TOOL_RESULT, "content": result, **ids}),
    ]


def usage_deltas(outcome: ToolOutcome, tool_id: UUID, integration_id: UUID | None = None) -> Usage:
    """The usage deltas of a call: the tool's ``use_count`` +1 when its function ran at
    all; when it ran and failed (a fallback included), the ``error_count`` +1 of
    ``integration_id`` (the integration the call went to, see :func:`route`)."""
    if not outcome.attempts:
        return {}
    deltas = {UsageKey(Entity.TOOL, tool_id, Counter.USE_COUNT): 1}
    if not outcome.ok and integration_id is not None:
        deltas[UsageKey(Entity.TOOL_INTEGRATION, integration_id, Counter.ERROR_COUNT)] = 1
    return deltas


# ---------------------------------------------------------------------- internals


class _TimedOut(Exception):
    """The attempt ran out of time (told apart from a TimeoutError the tool raises)."""


def _not_callable(tool: ToolSpec, function: ToolFunction | None) -> str | None:
    if not tool.enabled:
        return f"tool {tool.name!r} is disabled; enable it to call it"
    if function is None:
        return (
            f"no function is registered for tool {tool.name!r}; "
            "register one with ToolRegistry.register"
        )
    return None


async def _try_once(
    function: ToolFunction,
    arguments: dict[str, Any],
    handling: ErrorHandling,
    returns: Draft202012Validator | None,
    *,
    private: bool = False,
) -> tuple[Any, str | None, bool]:
    """One attempt: ``(result, problem, timed_out)``; a problem is retried. With
    ``private``, no detail that may quote a value (see :func:`call_tool`)."""
    try:
        raw = await _attempt(function, arguments, handling.timeout_ms / 1000)
    except _TimedOut:
        return None, f"timed out after {handling.timeout_ms} ms", True
    except _Exited as exc:
        return None, f"raised {type(exc.exited).__name__}: {_short(str(exc.exited))}", False
    except Exception as exc:  # whatever the tool raises is the tool's failure, not ours
        if private and not isinstance(exc, ToolFailure):
            return None, f"raised {type(exc).__name__} {_PRIVATE_DETAIL}", False
        return None, f"raised {type(exc).__name__}: {_short(str(exc))}", False
    try:
        result, size = _json_copy(raw)
    except ValueError as exc:
        if private:
            return None, f"returned data that is not JSON {_PRIVATE_DETAIL}", False
        return None, f"returned data that is not JSON ({_short(str(exc))})", False
    if size > MAX_VARIABLE_BYTES:
        limit = f"{MAX_VARIABLE_BYTES:,}"
        return None, f"returned {size:,} bytes of JSON, more than a variable holds ({limit})", False
    try:
        errors = _schema_errors(returns, result, "returnSchema") if returns is not None else []
    except ToolError as exc:
        return None, str(exc), False
    error = best_match(errors)
    if error is not None and private:
        return None, f"returned data that breaks its return schema {_PRIVATE_DETAIL}", False
    if error is not None:
        where, what = _path(error.absolute_path), _short(error.message)
        return None, f"returned data that breaks its return schema at {where}: {what}", False
    return result, None, False


async def _attempt(function: ToolFunction, arguments: dict[str, Any], timeout: float) -> Any:
    async def invoke() -> Any:
        try:
            return await function(copy.deepcopy(arguments))
        except (Exception, asyncio.CancelledError):
            raise
        except BaseException as exc:
            # SystemExit (sys.exit), KeyboardInterrupt, GeneratorExit or a BaseException of
            # the tool's own: asyncio re-raises the first two out of the event loop, which
            # would stop every session of the process. Here they are the tool's failure.
            raise _Exited(exc) from exc

    task = asyncio.ensure_future(invoke())
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task in done:
        return task.result()
    task.cancel()
    task.add_done_callback(_forget)
    await asyncio.wait({task}, timeout=_CANCEL_GRACE_SECONDS)
    raise _TimedOut


class _Exited(Exception):  # internal: never leaves this module
    """A tool raised a BaseException that is not an Exception (see :func:`_attempt`)."""

    def __init__(self, exited: BaseException) -> None:
        super().__init__(str(exited))
        self.exited = exited


def _forget(task: asyncio.Future[Any]) -> None:
    """Retrieve a timed-out task's exception so asyncio does not log it as lost."""
    if not task.cancelled():
        task.exception()


def _argument_value(value: Any, context: Mapping[str, Any]) -> Any:
    if not isinstance(value, str) or not has_template_syntax(value):
        return value
    text = value.strip()
    if text.startswith("{{") and text.endswith("}}"):
        source = expression_source(text)
        if analyse(source, expression=True).error is None:
            return compile_expression(source).evaluate(context)
    return compile_template(value).render(context)


_VARS = re.compile(r"\bvars\b")
_VARS_ATTRIBUTE = re.compile(r"\bvars\s*\.\s*([A-Za-z_]\w*)\b(?!\s*\()")


def reads_private(template: str, private_keys: Collection[str]) -> bool:
    """Whether ``template`` may read one of ``private_keys``: by name, or through ``vars``
    read some other way (``vars[x]``, ``vars.items()``, ``vars`` itself), or it cannot be
    analysed. Conservative: what it says no to never reads a private variable."""
    if not private_keys:
        return False
    if analyse(template, expression=False).error is not None:
        return True
    named = _VARS_ATTRIBUTE.findall(template)
    if len(named) != len(_VARS.findall(template)):
        return True  # vars read some other way: cannot tell which keys
    return any(name in private_keys for name in named)


def _required(tool: ToolSpec) -> set[str]:
    required = tool.parameters.get("required", [])
    return {n for n in required if isinstance(n, str)} if isinstance(required, list) else set()


def _json_copy(value: Any) -> tuple[Any, int]:
    """The value as JSON keeps it, and its size in bytes; ValueError if not JSON data."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(str(exc)) from exc
    return json.loads(text), len(text.encode())


@functools.lru_cache(maxsize=512)
def _compiled(schema_text: str) -> Draft202012Validator:
    schema = json.loads(schema_text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)  # no format checker: "format" is not enforced


def _validator(
    schema: Mapping[str, Any], what: str, error: type[ToolError] = ToolError
) -> Draft202012Validator:
    try:
        return _compiled(json.dumps(schema, sort_keys=True))
    except SchemaError as exc:
        raise error(
            f"the {what} is not a valid JSON Schema at {_path(exc.absolute_path)}: "
            f"{_short(exc.message)}"
        ) from exc


def _schema_errors(
    validator: Draft202012Validator,
    instance: Any,
    what: str,
    error: type[ToolError] = ToolError,
) -> list[ValidationError]:
    try:
        return list(validator.iter_errors(instance))
    except Exception as exc:  # an unresolvable $ref only shows while validating
        raise error(f"the {what} cannot be used: {_short(str(exc))}") from exc


def _argument_problem(error: ValidationError, private_arguments: Collection[str] = ()) -> str:
    path = list(error.absolute_path)
    if error.validator == "required" and not path and isinstance(error.instance, dict):
        missing = [n for n in cast(list[str], error.validator_value) if n not in error.instance]
        return "; ".join(f"argument {n!r} is required (no argument, no variable)" for n in missing)
    where = f"argument {path[0]!r}" if path else "the arguments"
    if len(path) > 1 and path[0] not in private_arguments:  # inner keys are the value's own
        where += f" at {_path(path)}"
    rule = _short(json.dumps(error.validator_value, default=str))
    return f"{where} does not satisfy {error.validator!r}: {rule}"


def _path(parts: Iterable[Any]) -> str:
    text = "$"
    for part in parts:
        identifier = isinstance(part, str) and part.isidentifier()
        text += f".{part}" if identifier else f"[{json.dumps(part)}]"
    return text


def _short(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL_CHARS else text[: _MAX_DETAIL_CHARS - 3] + "..."
