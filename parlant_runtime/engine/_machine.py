"""The one module that imports ``transitions``: a journey as a compiled state machine.

``transitions`` binds methods onto models with ``setattr`` and keeps its types in
stubs, so the rest of the package sees only :class:`JourneyMachine`. One machine
is built per journey version, with its automatic ``to_<state>`` triggers off (on
by default they add N x N transitions: 2.4 s and 446 MiB for 1,000 states). No
model is bound per session: the machine owns one cursor, and each step puts the
cursor on the session's stored state, fires the ``advance`` trigger with the
turn's condition outcomes, and reads where it ended. Steps are synchronous, so
one cursor serves every session of an event loop; use one machine per thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from transitions import Machine

__all__ = ["Edge", "JourneyMachine"]

_TRIGGER = "advance"


@dataclass(frozen=True, slots=True)
class Edge:
    """One transition, in the order it is tried from its source."""

    id: UUID
    source: str
    target: str


class _Cursor:
    """The machine's only model; ``state`` is set before every step."""

    state: str


class JourneyMachine:
    """A journey's states and prioritised transitions, compiled once."""

    def __init__(self, states: Sequence[str], initial: str, edges: Sequence[Edge]) -> None:
        self._cursor = _Cursor()
        self._machine = Machine(
            model=self._cursor,
            states=list(states),
            initial=initial,
            auto_transitions=False,
            ignore_invalid_triggers=True,
            send_event=False,
            model_attribute="state",
        )
        for edge in edges:  # transitions tries a source's transitions in the order added
            self._machine.add_transition(
                _TRIGGER,
                edge.source,
                edge.target,
                conditions=[_holds(edge.id)],
            )

    def step(self, state: str, eligible: Mapping[UUID, bool]) -> str | None:
        """From ``state``, the target of the first edge whose id is eligible, else ``None``."""
        self._machine.set_state(state, model=self._cursor)
        moved: bool = self._cursor.trigger(_TRIGGER, eligible)  # type: ignore[attr-defined]
        return self._cursor.state if moved else None


def _holds(edge_id: UUID) -> Any:
    def condition(eligible: Mapping[UUID, bool]) -> bool:
        return eligible.get(edge_id, False)

    return condition
