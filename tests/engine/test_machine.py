"""The journey machine records the move the engine chose, and only moves the graph has."""

from __future__ import annotations

from uuid import uuid4

import pytest
from transitions import MachineError

from parlant_runtime.engine._machine import Edge, JourneyMachine


def test_a_move_fires_the_chosen_transition_and_gives_its_target() -> None:
    ab, ac, ba = Edge(uuid4(), "a", "b"), Edge(uuid4(), "a", "c"), Edge(uuid4(), "b", "a")
    machine = JourneyMachine(["a", "b", "c"], "a", [ab, ac, ba])
    assert machine.move("a", ac.id) == "c"  # not the first from "a": the one chosen
    assert machine.move("a", ab.id) == "b"
    assert machine.move("b", ba.id) == "a"


def test_a_transition_that_does_not_start_at_the_state_is_refused() -> None:
    ab, bc = Edge(uuid4(), "a", "b"), Edge(uuid4(), "b", "c")
    machine = JourneyMachine(["a", "b", "c"], "a", [ab, bc])
    with pytest.raises(MachineError):
        machine.move("a", bc.id)
    with pytest.raises(AttributeError):
        machine.move("a", uuid4())  # no such transition in the journey
