"""Checks every store makes before it writes a turn: sizes, types, names.

They run before any I/O, so a refused turn leaves nothing behind and costs no
round trip; the memory and SQL adapters share them so that they refuse alike.
"""

from __future__ import annotations

import json
import re
from typing import Any
from uuid import UUID

from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.model import VariableScope, value_fits_type
from parlant_runtime.storage.port import (
    MAX_EVENT_BYTES,
    MAX_EVENTS_PER_TURN,
    MAX_VARIABLE_BYTES,
    InvalidData,
    SessionStart,
    TurnCommit,
)

__all__ = [
    "TOOL_DEGRADED",
    "TOOL_HEALTHY",
    "USAGE_COUNTERS",
    "check_bundle",
    "check_session_start",
    "check_text",
    "check_turn",
    "counters_of",
    "json_size",
    "parse_usage_key",
]

USAGE_COUNTERS: dict[str, frozenset[str]] = {
    "agent": frozenset({"total_sessions", "total_messages", "total_tokens_used", "total_cost"}),
    "session": frozenset({"tokens_used", "cost"}),
    "guideline": frozenset({"match_count"}),
    "canned_response": frozenset({"use_count"}),
    "journey": frozenset({"total_sessions"}),
    "transition": frozenset({"use_count"}),
    "journey_guideline": frozenset({"match_count"}),
    "tool": frozenset({"use_count"}),
    "tool_integration": frozenset({"error_count"}),
    "agent_knowledge_base": frozenset({"search_count"}),
}
"""The usage counters a turn may bump, by entity (counter columns of the SQL tables)."""

TOOL_HEALTHY = 95
"""Least success rate (percent) of a healthy tool integration (see engine/health.py)."""

TOOL_DEGRADED = 50
"""Least success rate (percent) of a degraded one; below it, ``failing``."""

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,199}")  # fullmatch: no trailing newline slips in

# a NUL character as json.dumps writes it: "\u0000" after an even number of backslashes
# (an odd number means the text holds a backslash followed by "u0000", which is fine)
_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")

NUL_HELP = (
    "contains a NUL character (\\u0000), which PostgreSQL cannot store in text or JSON; "
    "remove it or encode the data (base64, hex) before storing it"
)


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidData(f"not JSON data: {exc}") from exc


def _nul_path(value: Any, path: str) -> str | None:
    """Where in ``value`` (JSON-like data) a string holds a NUL character, if anywhere."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                return f"{path} (a key)"
            found = _nul_path(item, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def json_size(value: Any, what: str = "the data") -> int:
    """Bytes of the value as compact JSON (what the database stores).

    Raises:
        InvalidData: the value is not JSON data (NaN, infinity, bytes, ...) or a string
            in it holds a NUL character; the message names ``what`` and where.
    """
    text = _json_text(value)
    if "\\u0000" in text and _ESCAPED_NUL.search(text):
        where = _nul_path(value, what) or what
        raise InvalidData(f"{where} {NUL_HELP}")
    return len(text.encode())


def check_text(value: str | None, what: str) -> None:
    """Refuse a text the database cannot hold (a NUL character).

    Raises:
        InvalidData: naming ``what``.
    """
    if value is not None and "\x00" in value:
        raise InvalidData(f"{what} {NUL_HELP}")


def counters_of(entity: str) -> frozenset[str]:
    """The usage counters of an entity kind.

    Raises:
        InvalidData: the kind has no counters.
    """
    if entity not in USAGE_COUNTERS:
        raise InvalidData(f"no usage counters for {entity!r}; known: {sorted(USAGE_COUNTERS)}")
    return USAGE_COUNTERS[entity]


def parse_usage_key(key: str) -> tuple[str, UUID, str]:
    """``"<entity>:<uuid>:<counter>"`` -> its parts, checked.

    Raises:
        InvalidData: the key is malformed or names no known counter.
    """
    try:
        entity, raw_id, counter = key.split(":")
        entity_id = UUID(raw_id)
    except ValueError as exc:
        raise InvalidData(f"usage key {key!r} is not '<entity>:<uuid>:<counter>'") from exc
    if counter not in counters_of(entity):
        raise InvalidData(f"{entity} has no usage counter {counter!r}")
    return entity, entity_id, counter


def check_turn(turn: TurnCommit) -> None:
    """Refuse a turn that breaks a size, type or naming rule.

    Raises:
        InvalidData: what is wrong, naming the event or variable.
    """
    if turn.current_state_id is not None and turn.current_journey_id is None:
        raise InvalidData("a turn that sets a state must set its journey too")
    if len(turn.events) > MAX_EVENTS_PER_TURN:
        raise InvalidData(
            f"a turn appends at most {MAX_EVENTS_PER_TURN} events, this one {len(turn.events)}"
        )
    keys: set[str] = set()
    for index, event in enumerate(turn.events):
        what = f"event {index} ({event.event_type.value})"
        size = json_size({"content": event.content, "metadata": event.metadata}, what)
        if size > MAX_EVENT_BYTES:
            raise InvalidData(
                f"event {index} ({event.event_type.value}) is {size:,} bytes of JSON, "
                f"more than {MAX_EVENT_BYTES:,}; store large payloads elsewhere and refer to them"
            )
        check_text(event.tool_call_id, f"{what}: the tool call id")
        if event.idempotency_key is not None:
            check_text(event.idempotency_key, f"{what}: the idempotency key")
            if event.idempotency_key in keys:
                raise InvalidData(f"idempotency key {event.idempotency_key!r} repeats in one turn")
            keys.add(event.idempotency_key)
    for key in turn.usage:
        parse_usage_key(key)
    if turn.metadata is not None and json_size(turn.metadata, "session metadata") > MAX_EVENT_BYTES:
        raise InvalidData(f"session metadata is larger than {MAX_EVENT_BYTES:,} bytes of JSON")
    for change in turn.variables:
        if change.scope is VariableScope.GLOBAL:
            raise InvalidData(
                f"variable {change.key!r}: global values are set by publishing, not by a turn"
            )
        if not _KEY.fullmatch(change.key):
            raise InvalidData(f"variable key {change.key!r} is not an identifier")
        if not value_fits_type(change.value, change.value_type):
            shown = "its value" if change.is_private else repr(change.value)  # never echo it
            raise InvalidData(
                f"variable {change.key!r}: {shown} is not a {change.value_type.value}"
            )
        size = json_size(change.value, f"variable {change.key!r}")
        if size > MAX_VARIABLE_BYTES:
            raise InvalidData(
                f"variable {change.key!r} is {size:,} bytes of JSON, more than "
                f"{MAX_VARIABLE_BYTES:,}"
            )


def check_session_start(start: SessionStart) -> None:
    """Refuse a session start the database could not hold, before anything is written.

    Raises:
        InvalidData: what is wrong (metadata not JSON or too large, a NUL character).
    """
    check_text(start.customer_id, "the customer id")
    check_text(start.user_id, "the user id")
    check_text(start.title, "the session title")
    if json_size(start.metadata, "session metadata") > MAX_EVENT_BYTES:
        raise InvalidData(f"session metadata is larger than {MAX_EVENT_BYTES:,} bytes of JSON")


def check_bundle(bundle: AgentBundle) -> None:
    """Refuse a bundle holding text the database cannot store (a NUL character anywhere).

    Raises:
        InvalidData: naming the first place found, as the bundle file spells it.
    """
    text = bundle.model_dump_json()
    if "\\u0000" in text and _ESCAPED_NUL.search(text):
        where = _nul_path(bundle.model_dump(mode="json"), "bundle") or "the bundle"
        raise InvalidData(f"{where} {NUL_HELP}")
