"""Checks every store makes before it writes a turn: sizes, types, names.

They run before any I/O, so a refused turn leaves nothing behind and costs no
round trip; the memory and SQL adapters share them so that they refuse alike.
"""

from __future__ import annotations

import json
import re
from typing import Any

from parlant_runtime.model import value_fits_type
from parlant_runtime.storage.port import (
    MAX_EVENT_BYTES,
    MAX_EVENTS_PER_TURN,
    MAX_VARIABLE_BYTES,
    InvalidData,
    TurnCommit,
)

__all__ = ["check_turn", "json_size"]

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def json_size(value: Any) -> int:
    """Bytes of the value as compact JSON (what the database stores)."""
    try:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    except (TypeError, ValueError) as exc:
        raise InvalidData(f"not JSON data: {exc}") from exc


def check_turn(turn: TurnCommit) -> None:
    """Refuse a turn that breaks a size, type or naming rule.

    Raises:
        InvalidData: what is wrong, naming the event or variable.
    """
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
    for change in turn.variables:
        if not _KEY.match(change.key):
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
