"""Checking a step's ``expect`` keys against what the turn did.

One function per key, each returning the mismatches it found, so that a failing
step reports every expectation that did not hold, not only the first. Values are
compared as JSON values: ``true`` is not ``1``, ``1`` equals ``1.0``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from parlant_runtime.testing.results import Mismatch
from parlant_runtime.testing.schema import Expect

__all__ = ["Observed", "check_expect", "json_equal", "shown"]

_MISSING = object()


@dataclass(frozen=True, slots=True)
class Observed:
    """What one step did, as far as expectations can see."""

    journey: str | None
    state: str | None
    replies: tuple[str, ...]
    tool_calls: tuple[str, ...]
    tool_arguments: tuple[Mapping[str, Any], ...]
    """The arguments of each call in ``tool_calls`` (as the ``tool_call`` events show
    them: one fed by a private variable reads ``"[private]"``)."""
    guidelines: tuple[str, ...]
    events: tuple[str, ...]
    variables: Mapping[str, Any]
    """Every variable of the session that has a value after the step (private ones
    included); a variable without a value is left out."""

    @property
    def reply(self) -> str | None:
        """The reply text (several joined with a newline); ``None`` when there was none."""
        return "\n".join(self.replies) if self.replies else None


def shown(value: Any) -> str:
    """A value as a YAML author reads it: JSON, shortened."""
    if value is _MISSING:
        return "nothing (not set)"
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def json_equal(left: Any, right: Any) -> bool:
    """Equality of JSON values: booleans are not numbers; 1 equals 1.0."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left is right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return bool(left == right)
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(map(json_equal, left, right))
    return type(left) is type(right) and bool(left == right)


def _plain(key: str, expected: Any, got: Any, line: int | None) -> list[Mismatch]:
    if json_equal(expected, got):
        return []
    return [Mismatch(key, expected, got, f"expected {shown(expected)}, got {shown(got)}", line)]


def _journey(expect: Expect, seen: Observed, line: int | None) -> list[Mismatch]:
    return _plain("journey", expect.journey, seen.journey, line)


def _state(expect: Expect, seen: Observed, line: int | None) -> list[Mismatch]:
    return _plain("state", expect.state, seen.state, line)


def _reply(expect: Expect, seen: Observed, line: int | None) -> list[Mismatch]:
    return _plain("reply", expect.reply, seen.reply, line)


def _reply_contains(expect: Expect, seen: Observed, line: int | None) -> list[Mismatch]:
    wanted = expect.reply_contains
    if seen.reply is not None and wanted is not None and wanted in seen.reply:
        return []
    message = f"expected a reply containing {shown(wanted)}, got {_reply_text(seen)}"
    return [Mismatch("reply_contains", wanted, seen.reply, message, line)]


def _reply_matches(expect: Expect, seen: Observed, line: int | None) -> list[Mismatch]:
    pattern = expect.reply_matches or ""
    if seen.reply is not None and re.search(pattern, seen.reply):
        return []
    message = f"expected a reply matching /{pattern}/, got {_reply_text(seen)}"
    return [Mismatch("reply_matches", pattern, seen.reply, message, line)]


def _no_reply(expect: Expect, seen: Observed, line: int | None) -> list[Mismatch]:
    silent = not seen.replies
    if expect.no_reply is silent:
        return []
    if expect.no_reply:
        message = f"expected no reply, got {_reply_text(seen)}"
    else:
        message = "expected a reply, got no reply"
    return [Mismatch("no_reply", expect.no_reply, seen.reply, message, line)]


def _variables(expect: Expect, seen: Observed, line: int | None) -> list[Mismatch]:
    found: list[Mismatch] = []
    for key, wanted in (expect.variables or {}).items():
        got = seen.variables.get(key, _MISSING)
        if got is _MISSING and wanted is None:  # ``null`` expects a variable without a value
            continue
        if got is not _MISSING and json_equal(wanted, got):
            continue
        message = f"expected {shown(wanted)}, got {shown(got)}"
        found.append(
            Mismatch(f"variables.{key}", wanted, None if got is _MISSING else got, message, line)
        )
    return found


def _tool_calls(expect: Expect, seen: Observed, line: int | None) -> list[Mismatch]:
    wanted = expect.tool_calls or []
    names = [item if isinstance(item, str) else item.tool for item in wanted]
    found = _plain("tool_calls", names, list(seen.tool_calls), line)
    if found:
        return found
    for position, item in enumerate(wanted):
        if isinstance(item, str):
            continue
        arguments = seen.tool_arguments[position] if position < len(seen.tool_arguments) else {}
        for key, value in item.arguments.items():
            got = arguments.get(key, _MISSING)
            if got is not _MISSING and json_equal(value, got):
                continue
            message = (
                f"call {position + 1} ({item.tool}): expected argument {key} = "
                f"{shown(value)}, got {shown(got)}"
            )
            found.append(
                Mismatch(
                    f"tool_calls[{position}].arguments.{key}",
                    value,
                    None if got is _MISSING else got,
                    message,
                    line,
                )
            )
    return found


def _guidelines(expect: Expect, seen: Observed, line: int | None) -> list[Mismatch]:
    return _plain("guidelines", expect.guidelines, list(seen.guidelines), line)


def _events(expect: Expect, seen: Observed, line: int | None) -> list[Mismatch]:
    wanted = [event.value for event in expect.events or []]
    return _plain("events", wanted, list(seen.events), line)


def _reply_text(seen: Observed) -> str:
    return shown(seen.reply) if seen.reply is not None else "no reply"


_CHECKS: dict[str, Callable[[Expect, Observed, int | None], list[Mismatch]]] = {
    "journey": _journey,
    "state": _state,
    "reply": _reply,
    "reply_contains": _reply_contains,
    "reply_matches": _reply_matches,
    "no_reply": _no_reply,
    "variables": _variables,
    "tool_calls": _tool_calls,
    "guidelines": _guidelines,
    "events": _events,
}


def check_expect(
    expect: Expect, seen: Observed, line_of: Callable[[str], int | None]
) -> list[Mismatch]:
    """Every mismatch between ``expect`` and ``seen``, in the keys' documented order.

    ``line_of(key)`` gives the line of an ``expect`` key, for the report.
    """
    found: list[Mismatch] = []
    for key in expect.given():
        found.extend(_CHECKS[key](expect, seen, line_of(key)))
    return found
