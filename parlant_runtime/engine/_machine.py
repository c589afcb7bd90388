"""The one module that imports ``transitions``: a journey as a compiled state machine.

The engine decides which transition a step takes (it has the turn: conditions with
their trace, the no-revisit rule, usage); the machine records the move. Each
transition of the journey is its own trigger, named by the transition's id, so a
step is "fire the chosen transition from the session's state": the machine checks
that the graph has that transition from that state (a move it does not have is a
bug in the engine, never a customer's doing: ``transitions`` raises, and the error
is let through as programming errors are) and gives the state it leads to. Nothing
is decided twice (``docs/engine.md``, "One decision per step").

``transitions`` binds methods onto models with ``setattr`` and keeps its types in
stubs, so the rest of the package sees only :class:`JourneyMachine`. One machine
is built per journey version, with its automatic ``to_<state>`` triggers off (on
by default they add N x N transitions: 2.4 s and 446 MiB for 1,000 states). No
model is bound per session: the machine owns one cursor, and each move puts the
cursor on the session's stored state, fires the transition's trigger and reads
where it ended. Moves are synchronous, so one cursor serves every session of an
event loop; use one machine per thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from transitions import Machine

__all__ = ["Edge", "JourneyMachine"]


@dataclass(frozen=True, slots=True)
class Edge:
    """One transition of the journey."""

    id: UUID
    source: str
    target: str


class _Cursor:
    """The machine's only model; ``state`` is set before every move."""

    state: str


def _trigger(edge_id: UUID) -> str:
    return edge_id.hex


class JourneyMachine:
    """A journey's states and transitions, compiled once."""

    def __init__(self, states: Sequence[str], initial: str, edges: Sequence[Edge]) -> None:
        self._cursor = _Cursor()
        self._machine = Machine(
            model=self._cursor,
            states=list(states),
            initial=initial,
            auto_transitions=False,
            ignore_invalid_triggers=False,  # a transition from another state is refused
            send_event=False,
            model_attribute="state",
        )
        for edge in edges:
            self._machine.add_transition(_trigger(edge.id), edge.source, edge.target)

    def move(self, state: str, edge_id: UUID) -> str:
        """Take transition ``edge_id`` from ``state``; the state it leads to.

        Raises:
            transitions.MachineError: the transition does not start at ``state``.
            AttributeError: the journey has no such transition.
        """
        self._machine.set_state(state, model=self._cursor)
        self._cursor.trigger(_trigger(edge_id))  # type: ignore[attr-defined]
        return self._cursor.state
