"""The café's tool: what the example agent's ``place_order`` tool state calls.

A real backend would send the order to a till or a kitchen screen; this one picks
the drink out of the customer's words and hands out order numbers. Numbers count
per process, so two server processes may hand out the same one: good enough for
a demo, and the reason a real till numbers orders itself.
"""

from __future__ import annotations

import itertools
from typing import Any

from parlant_runtime import ToolRegistry

__all__ = ["DRINKS", "cafe_tools"]

DRINKS = ("flat white", "espresso", "latte", "cappuccino")
"""The menu, in the order a message is searched ("flat white" before "white")."""

MINUTES = {"espresso": 2, "latte": 4, "cappuccino": 4, "flat white": 3}


def cafe_tools() -> ToolRegistry:
    """A registry with the café's ``place_order`` tool."""
    tools = ToolRegistry()
    numbers = itertools.count(101)

    @tools.tool("place_order")
    async def place_order(arguments: dict[str, Any]) -> dict[str, Any]:
        request = str(arguments.get("request", "")).casefold()
        drink = next((name for name in DRINKS if name in request), "coffee")
        return {"drink": drink, "number": next(numbers), "minutes": MINUTES.get(drink, 3)}

    return tools
