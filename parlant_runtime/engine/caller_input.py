"""What a caller gives the runtime, checked before anything is computed or created.

A message text, the variables sent with a message and a new session's starting
variables are refused with :class:`~parlant_runtime.storage.port.InvalidData` when
no store could hold them, with the same rules every store applies at commit
(``parlant_runtime/storage/checks.py``), so bad input changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from parlant_runtime.engine.compiled import CompiledAgent
from parlant_runtime.engine.turn_state import value_type_of
from parlant_runtime.storage.checks import check_turn, check_value, check_variable
from parlant_runtime.storage.port import MAX_EVENT_BYTES, InvalidData, TurnCommit, VariableChange

__all__ = ["check_message", "check_variables", "starting_variables"]

_NO_SESSION = UUID(int=0)
"""Stands for the session not created yet while its starting variables are checked."""


def check_message(text: str) -> None:
    """Refuse a message text no store holds, before the turn is computed on it."""
    if not isinstance(text, str):
        raise InvalidData(f"the message text must be text, not {type(text).__name__}")
    check_value(text, "the message text")
    size = len(text.encode())
    if size > MAX_EVENT_BYTES:
        raise InvalidData(
            f"the message text is {size:,} bytes, more than {MAX_EVENT_BYTES:,}; "
            "store large payloads elsewhere and refer to them"
        )


def check_variables(variables: Mapping[str, Any] | None) -> None:
    """Refuse caller variables no store holds, before they are typed or computed with."""
    if variables is None:
        return
    if not isinstance(variables, Mapping):
        raise InvalidData(f"variables must be a mapping, not {type(variables).__name__}")
    for key, value in variables.items():
        check_variable(key, value)


def starting_variables(agent: CompiledAgent, variables: Mapping[str, Any]) -> list[VariableChange]:
    """A new session's starting variables, typed as the agent declares them (else by
    their value), checked as the store checks them at commit."""
    declared = {v.key: v for v in agent.stored.bundle.variables}
    changes = [
        VariableChange(
            key=key,
            value=value,
            value_type=declared[key].value_type if key in declared else value_type_of(value),
            is_private=declared[key].is_private if key in declared else False,
        )
        for key, value in variables.items()
    ]
    # the same checks the store makes at commit, made before anything exists
    check_turn(TurnCommit(session_id=_NO_SESSION, expected_version=0, variables=changes))
    return changes
