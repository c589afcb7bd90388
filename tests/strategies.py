"""Hypothesis strategies shared by the test modules: bundles and journey graphs.

Graphs come in two kinds: arbitrary ones (anything the format allows, to check
that the validator never crashes and never calls a broken graph valid) and ones
built to be valid (to check that it does not cry wolf).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

STATE_TYPES = ("chat", "tool", "decision", "final")
TOOL = {"name": "lookup", "parameters": {"type": "object", "properties": {}}}

names = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=12)
identifiers = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True)
natural_conditions = st.sampled_from(
    ["customer agrees", "customer wants to stop", "the customer gave a date", "payment failed"]
)
expression_conditions = st.sampled_from(
    ["{{ vars.count > 2 }}", "{{ vars.flag is defined }}", "{{ message | length > 3 }}"]
)
conditions = st.one_of(st.none(), natural_conditions, expression_conditions)
priorities = st.integers(min_value=1, max_value=1000)


def state_data(name: str, state_type: str, *, initial: bool = False) -> dict[str, Any]:
    """A state whose content fits its type."""
    state: dict[str, Any] = {"name": name, "stateType": state_type}
    if state_type == "chat":
        state["chatPrompt"] = f"Prompt of {name}"
    elif state_type == "tool":
        state["tool"] = TOOL["name"]
    elif state_type == "decision":
        state["condition"] = f"What does {name} decide?"
    else:
        state["isFinal"] = True
    if initial:
        state["isInitial"] = True
    return state


def bundle_with_journey(states: list[dict[str, Any]], transitions: list[dict[str, Any]]) -> Any:
    """Bundle data around one journey, declaring the tool that tool states call."""
    return {
        "agent": {"name": "Property agent"},
        "tools": [TOOL],
        "variables": [
            {"key": "count", "valueType": "number", "value": 0},
        ],
        "journeys": [{"title": "J", "states": states, "transitions": transitions}],
    }


@st.composite
def arbitrary_journeys(draw: st.DrawFn, max_states: int = 10) -> Any:
    """Any journey the format allows: missing or extra initial states, traps, cycles."""
    count = draw(st.integers(min_value=1, max_value=max_states))
    state_names = [f"s{i}" for i in range(count)]
    states = []
    for name in state_names:
        state_type = draw(st.sampled_from(STATE_TYPES))
        state = state_data(name, state_type, initial=draw(st.booleans()))
        if state_type == "final" and draw(st.booleans()):
            state.pop("isFinal")
        states.append(state)
    pairs = st.tuples(st.sampled_from(state_names), st.sampled_from([*state_names, "ghost"]))
    edges = draw(st.lists(pairs, max_size=count * 3))
    transitions = [
        {"from": a, "to": b, "condition": draw(conditions), "priority": draw(priorities)}
        for a, b in edges
    ]
    return bundle_with_journey(states, transitions)


@st.composite
def valid_journeys(draw: st.DrawFn, max_states: int = 12) -> Any:
    """A journey built to have no error and no warning.

    States ``s0 .. s{n-1}``; ``s0`` is initial and the last is final. Every state
    gets a forward edge (to a later state) and, except ``s0``, an edge in from an
    earlier one, so everything is reachable and everything reaches the end;
    backward edges leave only chat states, so every cycle waits for the customer.
    Each state's exits have distinct priorities and only the lowest may be
    unconditional, so nothing is shadowed.
    """
    count = draw(st.integers(min_value=2, max_value=max_states))
    last = count - 1
    kinds = ["chat"] + [draw(st.sampled_from(("chat", "tool", "decision"))) for _ in range(1, last)]
    states = [state_data(f"s{i}", kind, initial=i == 0) for i, kind in enumerate(kinds)]
    states.append(state_data(f"s{last}", "final"))
    edges: set[tuple[int, int]] = set()
    for i in range(1, count):
        edges.add((draw(st.integers(0, i - 1)), i))
    for i in range(last):
        edges.add((i, draw(st.integers(i + 1, last))))
        if kinds[i] == "chat" and i > 0 and draw(st.booleans()):
            edges.add((i, draw(st.integers(0, i - 1))))
    transitions = []
    for source in range(last):
        targets = sorted(target for s, target in edges if s == source)
        for rank, target in enumerate(targets):
            lowest = rank == len(targets) - 1
            condition = (
                draw(st.one_of(st.none(), natural_conditions))
                if lowest
                else f"customer chooses option {rank} of s{source}"
            )
            transitions.append(
                {
                    "from": f"s{source}",
                    "to": f"s{target}",
                    "condition": condition,
                    "priority": 1000 - rank,
                }
            )
    return bundle_with_journey(states, transitions)


@st.composite
def bundles(draw: st.DrawFn) -> Any:
    """Bundle data exercising every section, with arbitrary (unicode) names and texts."""
    tool_names = draw(st.lists(names, max_size=3, unique=True))
    guideline_names = draw(st.lists(names, max_size=3, unique=True))
    journey_titles = draw(st.lists(names, max_size=2, unique=True))
    return {
        "agent": {
            "name": draw(names),
            "description": draw(st.none() | st.text(max_size=40)),
            "compositionMode": draw(st.sampled_from(["fluid", "strict"])),
            "temperature": draw(st.integers(0, 100)),
            "noMatchResponse": draw(st.none() | st.text(max_size=30)),
        },
        "guidelines": [
            {
                "name": name,
                "condition": draw(conditions),
                "action": draw(st.text(min_size=1, max_size=30)),
                "priority": draw(priorities),
                "enabled": draw(st.booleans()),
                "tools": draw(st.lists(st.sampled_from(tool_names), max_size=2))
                if tool_names
                else [],
            }
            for name in guideline_names
        ],
        "cannedResponses": [
            {
                "template": draw(st.text(min_size=1, max_size=30)),
                "tags": draw(st.lists(names, max_size=2)),
                "conditions": draw(st.lists(natural_conditions, max_size=2)),
                "priority": draw(priorities),
                "requiresExactMatch": draw(st.booleans()),
            }
            for _ in range(draw(st.integers(0, 3)))
        ],
        "terms": [
            {"name": name, "synonyms": draw(st.lists(names, max_size=3))}
            for name in draw(st.lists(names, max_size=3, unique=True))
        ],
        "tools": [
            {
                "name": name,
                "toolType": draw(st.sampled_from(["sim_native", "custom", "external"])),
                "parameters": {"type": "object"},
                "errorHandling": {"retries": draw(st.integers(0, 5))},
                "integrations": [{"integrationType": "mcp_server", "targetId": "srv-1"}]
                if draw(st.booleans())
                else [],
            }
            for name in tool_names
        ],
        "variables": [
            {
                "key": key,
                "scope": draw(st.sampled_from(["session", "customer", "global"])),
                "valueType": "number",
                "value": draw(st.integers(-(10**6), 10**6)),
                "isPrivate": draw(st.booleans()),
            }
            for key in draw(st.lists(identifiers, max_size=3, unique=True))
        ],
        "knowledgeBases": [
            {"knowledgeBaseId": kb, "searchThreshold": draw(st.integers(0, 100))}
            for kb in draw(st.lists(names, max_size=2, unique=True))
        ],
        "journeys": [
            {
                **draw(arbitrary_journeys(max_states=5))["journeys"][0],
                "title": title,
                "conditions": draw(st.lists(natural_conditions, max_size=2)),
                "allowRevisiting": draw(st.booleans()),
            }
            for title in journey_titles
        ],
    }


@st.composite
def mutated_journeys(draw: st.DrawFn) -> Any:
    """A valid journey with a few random edits: often still valid, often subtly not.

    Purely arbitrary graphs are almost never free of errors, which would leave
    "no error implies ..." properties untested; small edits of valid graphs land
    on both sides of the line.
    """
    data = draw(valid_journeys())
    journey = data["journeys"][0]
    states, transitions = journey["states"], journey["transitions"]
    names = [state["name"] for state in states]
    for _ in range(draw(st.integers(0, 3))):
        edit = draw(st.sampled_from(["drop", "add", "redirect", "trap", "retype", "initial"]))
        if edit == "drop" and transitions:
            transitions.pop(draw(st.integers(0, len(transitions) - 1)))
        elif edit == "add":
            transitions.append(
                {
                    "from": draw(st.sampled_from(names)),
                    "to": draw(st.sampled_from(names)),
                    "condition": draw(conditions),
                    "priority": draw(priorities),
                }
            )
        elif edit == "redirect" and transitions:
            transition = transitions[draw(st.integers(0, len(transitions) - 1))]
            transition["to"] = draw(st.sampled_from(names))
        elif edit == "trap" and f"trap{len(states)}" not in names:
            # two chat states that only lead to each other, entered from an existing state
            first, second = f"trap{len(states)}", f"trap{len(states) + 1}"
            states.extend([state_data(first, "chat"), state_data(second, "chat")])
            entry = draw(st.sampled_from(names))
            transitions.append({"from": entry, "to": first, "condition": "customer is stuck"})
            transitions.append({"from": first, "to": second, "condition": "customer asks"})
            transitions.append({"from": second, "to": first, "condition": "customer asks"})
            names.extend([first, second])
        elif edit == "retype":
            index = draw(st.integers(0, len(states) - 1))
            kind = draw(st.sampled_from(STATE_TYPES))
            states[index] = state_data(
                names[index], kind, initial=bool(states[index].get("isInitial"))
            )
        elif edit == "initial":
            index = draw(st.integers(0, len(states) - 1))
            states[index]["isInitial"] = not states[index].get("isInitial", False)
    return data
