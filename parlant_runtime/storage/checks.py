"""Checks every store makes before it writes a turn: sizes, types, names.

They run before any I/O, so a refused turn leaves nothing behind and costs no
round trip; the memory and SQL adapters share them so that they refuse alike.
"""

from __future__ import annotations

import json
import re
from typing import Any
from uuid import UUID

from parlant_runtime.model import VariableScope, value_fits_type
from parlant_runtime.storage.port import (
    MAX_EVENT_BYTES,
    MAX_EVENTS_PER_TURN,
    MAX_VARIABLE_BYTES,
    InvalidData,
    TurnCommit,
)

__all__ = ["USAGE_COUNTERS", "check_turn", "counters_of", "json_size", "parse_usage_key"]

USAGE_COUNTERS: dict[str, frozenset[str]] = {
    "agent": frozenset({"total_sessions", "total_messages", "total_tokens_used"}),
    "guideline": frozenset({"match_count"}),
    "canned_response": frozenset({"use_count"}),
    "journey": frozenset({"total_sessions"}),
    "transition": frozenset({"use_count"}),
    "journey_guideline": frozenset({"match_count"}),
    "tool": frozenset({"use_count"}),
}
"""The usage counters a turn may bump, by entity (counter columns of the SQL tables)."""

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,199}")  # fullmatch: no trailing newline slips in


def json_size(value: Any) -> int:
    """Bytes of the value as compact JSON (what the database stores)."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return len(text.encode())
    except (TypeError, ValueError) as exc:
        raise InvalidData(f"not JSON data: {exc}") from exc


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
        size = json_size({"content": event.content, "metadata": event.metadata})
        if size > MAX_EVENT_BYTES:
            raise InvalidData(
                f"event {index} ({event.event_type.value}) is {size:,} bytes of JSON, "
                f"more than {MAX_EVENT_BYTES:,}; store large payloads elsewhere and refer to them"
            )
        if event.idempotency_key is not None:
            if event.idempotency_key in keys:
                raise InvalidData(f"idempotency key {event.idempotency_key!r} repeats in one turn")
            keys.add(event.idempotency_key)
    for key in turn.usage:
        parse_usage_key(key)
    if turn.metadata is not None and json_size(turn.metadata) > MAX_EVENT_BYTES:
        raise InvalidData(f"session metadata is larger than {MAX_EVENT_BYTES:,} bytes of JSON")
    for change in turn.variables:
        if change.scope is VariableScope.GLOBAL:
            raise InvalidData(
                f"variable {change.key!r}: global values are set by publishing, not by a turn"
            )
        if not _KEY.fullmatch(change.key):
            raise InvalidData(f"variable key {change.key!r} is not an identifier")
        if not value_fits_type(change.value, change.value_type):
            raise InvalidData(
                f"variable {change.key!r}: {change.value!r} is not a {change.value_type.value}"
            )
        size = json_size(change.value)
        if size > MAX_VARIABLE_BYTES:
            raise InvalidData(
                f"variable {change.key!r} is {size:,} bytes of JSON, more than "
                f"{MAX_VARIABLE_BYTES:,}"
            )
