"""Turning one way through a journey into the steps of a conversation-test case.

Part of :mod:`parlant_runtime.testing.generate` (step 4 of its docstring): a step per
customer turn, with the natural-language conditions that must hold, the values to
set and the tool results to stub, or :class:`Unplannable` saying why the way cannot
be planned.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment, nodes
from jinja2.exceptions import TemplateSyntaxError

from parlant_runtime.bundle.schema import AgentBundle, JourneySpec, StateSpec
from parlant_runtime.model import StateType
from parlant_runtime.sandbox import ConditionKind, condition_kind, expression_source
from parlant_runtime.testing._routes import DETOUR, Route, TransitionEdge
from parlant_runtime.testing._values import (
    MISSING,
    argument_schemas,
    compares,
    constant_of,
    drop_in,
    example_for_schema,
    get_in,
    path_of,
    satisfying,
    set_in,
    simple_var,
)

__all__ = ["Plan", "PlannedStep", "Planner", "Unplannable"]

_PARSER = Environment(autoescape=False)
"""Only parses expressions (never renders): the runtime's sandbox evaluates them."""


class Unplannable(Exception):
    """The path cannot be turned into steps by construction; the message says why."""


@dataclass
class PlannedStep:
    holds: list[str] = field(default_factory=list)
    not_holds: set[str] = field(default_factory=set)
    sets: dict[str, Any] = field(default_factory=dict)
    terms: list[str] = field(default_factory=list)
    avoid_terms: set[str] = field(default_factory=set)
    takes: list[str] = field(default_factory=list)
    checks: list[tuple[nodes.Node, bool, str]] = field(default_factory=list)
    """Expression conditions this step decided, with the truth the path needs."""

    def clone(self) -> PlannedStep:
        return PlannedStep(
            holds=list(self.holds),
            not_holds=set(self.not_holds),
            sets=copy.deepcopy(self.sets),
            terms=list(self.terms),
            avoid_terms=set(self.avoid_terms),
            takes=list(self.takes),
            checks=list(self.checks),
            journey=self.journey,
            state=self.state,
        )

    journey: str | None = None
    state: str | None = None


class Planner:
    """Turns one path through a journey into a case, or says why it cannot."""

    def __init__(self, bundle: AgentBundle, journey: JourneySpec) -> None:
        self.bundle = bundle
        self.journey = journey
        self.tools = {tool.name: tool for tool in bundle.tools}
        # declared without a value: not set (see docs/concepts.md, Variables)
        self.values: dict[str, Any] = {
            v.key: v.value for v in bundle.variables if v.value is not None
        }
        self.declared = {v.key: v for v in bundle.variables}
        self.results: dict[str, str] = {}
        """Result variable -> tool, for tool states already run in this case."""
        self.ran_this_step: set[str] = set()
        self.stubs: dict[str, Any] = {}
        """The result of each tool's latest call in this case."""
        self.calls: dict[str, list[Any]] = {}
        """Every call's result per tool, in order (the last one is ``stubs[tool]``): a tool
        that runs again gets a result of its own, written as the stub's ``calls``."""
        self.placeholders: set[tuple[str, tuple[str, ...]]] = set()
        """(tool, field path) of stub fields filled in only because the tool's
        ``returnSchema`` requires them: any value a condition needs may replace them."""
        self.start: dict[str, Any] = {}
        self.steps: list[PlannedStep] = []
        self.hints = argument_schemas(bundle)
        self.result_tools = {
            state.tool_config["resultVariable"]: state.tool
            for state in journey.states
            if state.tool and isinstance(state.tool_config.get("resultVariable"), str)
        }

    @property
    def step(self) -> PlannedStep:
        return self.steps[-1]

    # -- conditions ------------------------------------------------------------

    def condition(self, text: str | None, want: bool) -> None:
        kind = condition_kind(text)
        if kind is ConditionKind.ALWAYS:
            if not want:
                raise Unplannable("a transition without a condition always holds first")
            return
        assert text is not None
        if kind is ConditionKind.NATURAL:
            self.natural(text, want)
            return
        source = expression_source(text)
        try:
            tree = _PARSER.parse("{{ " + source + " }}")
        except TemplateSyntaxError as exc:
            raise Unplannable(f"the condition {text!r} does not parse: {exc}") from None
        body = tree.body
        if len(body) != 1 or not isinstance(body[0], nodes.Output) or len(body[0].nodes) != 1:
            raise Unplannable(f"cannot read the condition {text!r}")
        node = body[0].nodes[0]
        self.expression(node, want, text)
        self.step.checks.append((node, want, text))
        # a value set for this condition holds for the whole step: recheck the others
        for other, wanted, other_text in self.step.checks:
            if self.evaluate(other) not in (None, wanted):
                raise Unplannable(
                    f"{text!r} and {other_text!r} cannot both be as the path needs in one step"
                )

    def evaluate(self, node: nodes.Node) -> bool | None:
        """The truth of an expression over the values planned so far; ``None`` when it
        depends on a tool's result or on something the planner does not read."""
        if isinstance(node, nodes.Not):
            inner = self.evaluate(node.node)
            return None if inner is None else not inner
        if isinstance(node, nodes.And | nodes.Or):
            left, right = self.evaluate(node.left), self.evaluate(node.right)
            if left is None or right is None:
                return None
            return (left and right) if isinstance(node, nodes.And) else (left or right)
        if isinstance(node, nodes.Const):
            return bool(node.value)
        if isinstance(node, nodes.Call) and path_of(node.node) == ("mentions",):
            if len(node.args) != 1 or not isinstance(node.args[0], nodes.Const):
                return None
            return str(node.args[0].value) in self.step.terms
        target = node.node if isinstance(node, nodes.Test) else node
        if isinstance(node, nodes.Compare):
            target = node.expr
        path = path_of(target)
        if path is None or path[0] != "vars" or len(path) < 2 or path[1] in self.result_tools:
            return None
        value = self.current(path)
        if isinstance(node, nodes.Test):
            if node.name in ("defined", "undefined"):
                return (value is not MISSING) == (node.name == "defined")
            return None
        if isinstance(node, nodes.Compare):
            if len(node.ops) != 1 or value is MISSING:
                return None
            constant = self.constant(node.ops[0].expr)
            return None if constant is MISSING else compares(node.ops[0].op, value, constant)
        return None if value is MISSING else bool(value)

    def natural(self, text: str, want: bool) -> None:
        key = " ".join(text.casefold().split())
        step = self.step
        if want:
            if key in step.not_holds:
                raise Unplannable(f"{text!r} must both hold and not hold in one step")
            if text not in step.holds:
                step.holds.append(text)
        else:
            if any(" ".join(h.casefold().split()) == key for h in step.holds):
                raise Unplannable(f"{text!r} must both hold and not hold in one step")
            step.not_holds.add(key)

    def expression(self, node: nodes.Node, want: bool, text: str) -> None:
        if isinstance(node, nodes.Not):
            self.expression(node.node, not want, text)
        elif isinstance(node, nodes.And | nodes.Or):
            both = isinstance(node, nodes.And) == want
            if both:
                self.expression(node.left, want, text)
                self.expression(node.right, want, text)
            else:
                self.either(node.left, node.right, want, text)
        elif isinstance(node, nodes.Const):
            if bool(node.value) != want:
                raise Unplannable(f"the condition {text!r} is always {bool(node.value)}")
        elif isinstance(node, nodes.Test) and node.name in ("defined", "undefined"):
            path = self.readable(node.node, text)
            self.defined(path, want == (node.name == "defined"), text)
        elif isinstance(node, nodes.Test) and node.name == "none":
            path = self.readable(node.node, text)
            self.value(path, None if want else self.placeholder(path), text)
        elif isinstance(node, nodes.Compare) and len(node.ops) == 1:
            self.compare(node, want, text)
        elif isinstance(node, nodes.Call) and path_of(node.node) == ("mentions",):
            if len(node.args) != 1 or not isinstance(node.args[0], nodes.Const):
                raise Unplannable(f"cannot read the mentions() call in {text!r}")
            term = str(node.args[0].value)
            if want:
                self.step.terms.append(term)
            else:
                self.step.avoid_terms.add(term)
        else:
            path = self.readable(node, text)
            current = self.current(path)
            if current is not MISSING and bool(current) == want:
                return
            self.value(path, self.truthy(path, want), text)

    def either(self, left: nodes.Node, right: nodes.Node, want: bool, text: str) -> None:
        saved = self.snapshot()
        try:
            self.expression(left, want, text)
        except Unplannable:
            self.restore(saved)
            self.expression(right, want, text)

    def compare(self, node: nodes.Compare, want: bool, text: str) -> None:
        operand = node.ops[0]
        path = path_of(node.expr)
        constant = self.constant(operand.expr)
        if path is None or constant is MISSING:
            raise Unplannable(f"the generator cannot choose values for {text!r}")
        current = self.current(path)
        if not want and current is MISSING and operand.op not in ("ne", "notin"):
            return  # a comparison with an unset value is false
        value = satisfying(operand.op, constant, want, current)
        schema = self.schema_at(path) or (self.hints.get(path[1]) if len(path) == 2 else None)
        allowed = schema.get("enum") if isinstance(schema, dict) else None
        if isinstance(allowed, list) and value not in allowed:
            fits = [v for v in allowed if compares(operand.op, v, constant) == want]
            value = fits[0] if fits else MISSING
        if value is MISSING:
            raise Unplannable(f"the generator cannot choose values for {text!r}")
        self.value(path, value, text)

    def constant(self, node: nodes.Node) -> Any:
        value = constant_of(node)
        if value is not MISSING:
            return value
        path = path_of(node)
        if path is not None and path[0] == "vars":
            return self.current(path)
        return MISSING

    def readable(self, node: nodes.Node, text: str) -> tuple[str, ...]:
        path = path_of(node)
        if path is None or path[0] not in ("vars", "tool") or len(path) < 2:
            raise Unplannable(f"the generator cannot choose values for {text!r}")
        return path

    # -- values ----------------------------------------------------------------

    def current(self, path: Sequence[str]) -> Any:
        if path[0] == "tool":
            if path[1] not in self.ran_this_step:
                return MISSING
            return get_in(self.stubs.get(path[1]), path[2:])
        return get_in(self.values, path[1:])

    def schema_at(self, path: Sequence[str]) -> Any:
        """The JSON schema of a tool result's field (``tool.t.x``, ``vars.<result>.x``)."""
        if path[0] == "tool":
            tool, rest = path[1], path[2:]
        elif path[0] == "vars" and path[1] in self.result_tools:
            tool, rest = self.result_tools[path[1]], path[2:]
        else:
            return None
        spec = self.tools.get(tool)
        schema: Any = spec.return_schema if spec is not None else None
        for part in rest:
            if not isinstance(schema, dict):
                return None
            schema = (schema.get("properties") or {}).get(part)
        return schema

    def placeholder(self, path: Sequence[str]) -> Any:
        key = path[-1]
        schema = self.schema_at(path)
        if schema is not None:
            return example_for_schema(schema, key)
        if len(path) == 2 and path[0] == "vars":
            if key in self.hints:
                return example_for_schema(self.hints[key], key)
            declared = self.declared.get(key)
            if declared is not None:
                return {
                    "string": f"TODO {key}",
                    "number": 1,
                    "boolean": True,
                    "object": {},
                    "array": [],
                }.get(declared.value_type.value, f"TODO {key}")
        return f"TODO {key}"

    def truthy(self, path: Sequence[str], want: bool) -> Any:
        """A value of the field's type that is true (or false) in a condition."""
        schema = self.schema_at(path)
        kind = schema.get("type") if isinstance(schema, dict) else None
        if not want:
            return {"string": "", "number": 0, "integer": 0, "array": [], "object": {}}.get(
                kind if isinstance(kind, str) else "", False
            )
        value = self.placeholder(path)
        return value if value else True

    def defined(self, path: tuple[str, ...], want: bool, text: str) -> None:
        present = self.current(path) is not MISSING
        if present == want:
            return
        if not want:
            raise Unplannable(
                f"{text!r} needs {'.'.join(path)} unset, but the path has set it already"
            )
        self.value(path, self.placeholder(path), text)

    def value(self, path: tuple[str, ...], value: Any, text: str) -> None:
        """Make ``path`` hold ``value`` from this step on."""
        if path[0] == "tool" or (path[0] == "vars" and path[1] in self.results):
            tool = path[1] if path[0] == "tool" else self.results[path[1]]
            if tool not in self.ran_this_step and path[0] == "tool":
                raise Unplannable(f"{text!r} reads tool {tool!r} before it runs in this step")
            stub = self.stubs.setdefault(tool, {})
            if len(path) == 2:
                raise Unplannable(f"{text!r} needs tool {tool!r} to return something specific")
            field = tuple(path[2:])
            held = [p for p in self.placeholders if p[0] == tool and field[: len(p[1])] == p[1]]
            if held and isinstance(stub, dict):  # a schema's placeholder, not a need: replace it
                self.placeholders.difference_update(held)
                drop_in(stub, held[0][1])
            if not isinstance(stub, dict) or not set_in(stub, field, value):
                was = get_in(stub, field)
                raise Unplannable(
                    f"a call of tool {tool!r} would have to return two different results: "
                    f"{'.'.join(field)} is {json.dumps(was, default=str)} for an earlier "
                    f"condition and {json.dumps(value, default=str)} for {text!r}"
                )
            if path[0] == "vars":
                set_in(self.values, path[1:], value)
            return
        key = path[1]
        if len(path) == 2:
            self.values[key] = value
            self.step.sets[key] = value
            return
        whole = copy.deepcopy(self.values.get(key, {}))
        if not isinstance(whole, dict):
            whole = {}
        here = whole
        for part in path[2:-1]:
            here = here.setdefault(part, {})
            if not isinstance(here, dict):
                raise Unplannable(f"cannot give {'.'.join(path)} a value for {text!r}")
        here[path[-1]] = value
        self.values[key] = whole
        self.step.sets[key] = whole

    def snapshot(self) -> Any:
        return (
            copy.deepcopy((self.values, self.stubs, self.calls)),
            self.steps[-1].clone(),
            set(self.placeholders),
        )

    def restore(self, saved: Any) -> None:
        (self.values, self.stubs, self.calls), self.steps[-1], self.placeholders = saved

    def save(self) -> Any:
        """Everything planned so far, to go back to when a branch of the search fails."""
        return (
            copy.deepcopy((self.values, self.stubs, self.calls, self.start)),
            [step.clone() for step in self.steps],
            dict(self.results),
            set(self.ran_this_step),
            set(self.placeholders),
        )

    def back_to(self, saved: Any) -> None:
        (self.values, self.stubs, self.calls, self.start), self.steps, self.results, ran, held = (
            saved
        )
        self.ran_this_step = set(ran)
        self.placeholders = set(held)

    # -- walking the path ------------------------------------------------------

    def activation(self) -> None:
        """Step 1: this journey's activation holds, no earlier journey's does."""
        for other in self.bundle.journeys:
            if other is self.journey:
                break
            if other.enabled and any(s.is_initial for s in other.states):
                for text in other.conditions:
                    self.condition(text, False)
        if not self.journey.conditions:
            raise Unplannable("the journey has no activation condition, so no message starts it")
        problems = []
        for text in self.journey.conditions:
            saved = self.snapshot()
            try:
                self.condition(text, True)
                return
            except Unplannable as exc:
                problems.append(str(exc))
                self.restore(saved)
        raise Unplannable("no activation condition can be made to hold: " + "; ".join(problems))

    def enter(self, state: StateSpec) -> None:
        """Entering ``state`` in the current step (a chat state is waited in, not skipped)."""
        if state.ends_journey:
            self.step.journey, self.step.state = None, None
            return
        skippable = (
            self.journey.allow_skipping
            and state.allow_skip
            and state.condition
            and state.state_type is StateType.CHAT
        )
        if skippable:
            self.condition(state.condition, False)
        if state.state_type is StateType.CHAT:
            self.step.journey, self.step.state = self.journey.title, state.name
        if state.state_type is StateType.TOOL and state.tool in self.tools:
            self.prepare_tool(state)

    def prepare_tool(self, state: StateSpec) -> None:
        tool = self.tools[state.tool or ""]
        if tool.name in self.calls:  # called again in this case: a result of its own
            self.placeholders = {p for p in self.placeholders if p[0] != tool.name}
            self.stubs[tool.name] = {}
        stub = self.stubs.setdefault(tool.name, {})
        self.calls.setdefault(tool.name, []).append(stub)
        if isinstance(stub, dict) and tool.return_schema:
            example = example_for_schema(tool.return_schema, tool.name)
            if isinstance(example, dict):
                for key, value in example.items():
                    if key not in stub:
                        stub[key] = value
                        self.placeholders.add((tool.name, (key,)))
        arguments = state.tool_config.get("arguments") or {}
        schema = tool.parameters if isinstance(tool.parameters, dict) else {}
        properties = schema.get("properties") or {}
        needed = {
            name: simple_var(value)
            for name, value in arguments.items()
            if isinstance(value, str) and simple_var(value)
        }
        for name in schema.get("required") or []:
            if name not in arguments:
                needed[name] = name
        for parameter, key in needed.items():
            if key is None:
                continue
            if self.current(("vars", key)) is MISSING:
                self.hints.setdefault(key, properties.get(parameter))
                self.value(("vars", key), self.placeholder(("vars", key)), f"tool {tool.name}")
        result = state.tool_config.get("resultVariable")
        self.ran_this_step.add(tool.name)
        if isinstance(result, str):
            self.results[result] = tool.name
            self.values[result] = self.stubs[tool.name]

    def take(self, edge: TransitionEdge, rivals: Sequence[TransitionEdge]) -> None:
        """Take ``edge``: every transition tried before it fails, it holds."""
        self.condition(edge.spec.condition, True)  # first: rivals then bend around it
        for rival in rivals:
            if rival.index == edge.index:
                break
            self.condition(rival.spec.condition, False)
        label = f"{edge.spec.from_state} -> {edge.spec.to_state}"
        if edge.spec.condition:
            label += f" [{' '.join(edge.spec.condition.split())}]"
        self.step.takes.append(label)

    def plan(
        self,
        route: Route,
        outgoing: Mapping[str, list[TransitionEdge]],
        distance: Mapping[str, int],
    ) -> tuple[Plan, list[TransitionEdge]]:
        """Steps that take ``route.before`` and ``route.edge``, then on to a final state
        (``route.after`` first, else the first way on that can be planned)."""
        states = {state.name: state for state in self.journey.states}
        initial = next(state for state in self.journey.states if state.is_initial)
        path = [*route.before, route.edge]
        names = [initial.name, *(edge.spec.to_state for edge in path)]
        if not self.journey.allow_revisiting and len(set(names)) < len(names):
            raise Unplannable(
                "the journey forbids revisiting and every path found through it revisits a state"
            )
        self.steps.append(PlannedStep())
        self.activation()
        self.enter(initial)
        for edge in path:
            self.along(edge, states, outgoing)
        search = _Search(
            states, outgoing, distance, set(names), [_FINISH_BUDGET + len(route.after)]
        )
        rest = self.finish(names[-1], search, list(route.after), DETOUR)
        return Plan(self.steps, self.calls, self.start), [*path, *rest]

    def along(
        self,
        edge: TransitionEdge,
        states: Mapping[str, StateSpec],
        outgoing: Mapping[str, list[TransitionEdge]],
    ) -> None:
        """Take ``edge``: a new step when it leaves a chat state (the customer speaks)."""
        if states[edge.spec.from_state].state_type is StateType.CHAT:
            self.steps.append(PlannedStep())
            self.ran_this_step = set()
        self.take(edge, outgoing[edge.spec.from_state])
        self.enter(states[edge.spec.to_state])

    def finish(
        self, here: str, search: _Search, hint: list[TransitionEdge], slack: int
    ) -> list[TransitionEdge]:
        """Plan on from ``here`` to a final state, depth first: the hinted transition first,
        then those nearest a final state; at most ``slack`` transitions of detour."""
        if search.states[here].ends_journey or here not in search.distance:
            return []  # ended, or no final state is reachable: the case ends where it waits
        wanted = hint[0].index if hint else None
        options = [
            edge
            for edge in search.outgoing.get(here, [])
            if edge.spec.to_state in search.distance
            and (
                edge.index == wanted
                or search.distance[edge.spec.to_state] + 1 - search.distance[here] <= slack
            )
            and (self.journey.allow_revisiting or edge.spec.to_state not in search.visited)
        ]
        options.sort(key=lambda edge: (edge.index != wanted, search.distance[edge.spec.to_state]))
        failure: Unplannable | None = None
        for edge in options:
            if search.budget[0] <= 0:
                break
            search.budget[0] -= 1
            saved = self.save()
            target = edge.spec.to_state
            try:
                self.along(edge, search.states, search.outgoing)
                search.visited.add(target)
                # the hinted way costs no slack: it may be a long walk on purpose
                extra = (
                    0
                    if edge.index == wanted
                    else search.distance[target] + 1 - search.distance[here]
                )
                rest = self.finish(
                    target, search, hint[1:] if edge.index == wanted else [], slack - extra
                )
                return [edge, *rest]
            except Unplannable as exc:
                failure = failure or exc
                self.back_to(saved)
        if failure is not None:
            raise failure
        raise Unplannable(f"no way on from {here!r} to a final state can be planned")


@dataclass
class _Search:
    """What the search for a way on to a final state shares across its branches."""

    states: Mapping[str, StateSpec]
    outgoing: Mapping[str, list[TransitionEdge]]
    distance: Mapping[str, int]
    visited: set[str]
    budget: list[int]


_FINISH_BUDGET = 64
"""Most transitions tried while searching a way on to a final state, per path, beyond
those of the suggested way."""


@dataclass(frozen=True, slots=True)
class Plan:
    steps: list[PlannedStep]
    stubs: dict[str, list[Any]]
    """Each stubbed tool's result per call, in order."""
    start: dict[str, Any]
