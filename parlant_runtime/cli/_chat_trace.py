"""The ``--trace`` block of ``parlant-runtime chat``: where a turn went, and why.

One turn's :class:`~parlant_runtime.engine.trace.Trace` becomes a few short
sections, each present only when it has something to say:

- ``at``: the journey and state the session now waits in, and the states the
  turn passed through;
- ``journey``: activation conditions tried, with their results;
- ``skipped``: skippable states passed because their condition held;
- ``moves``: every transition considered, with its condition, what came of it
  (taken, condition false, revisit forbidden, not tried) and its priority;
- ``guidelines``: the matched ones in order, then the ones whose condition failed;
- ``reply``: where the reply came from and the candidates passed over, with why;
- ``tools``: each tool called, ok or its error;
- ``errors``: what failed inside the turn (the session stays where it waited);
- ``other``: any evaluated condition none of the above explains.

Lines are styled with :func:`click.style`; the caller decides whether colours
reach the terminal (``click.echo(..., color=...)``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import click

from parlant_runtime.engine import ConditionTrace, Trace, TransitionTrace
from parlant_runtime.model import Event, EventType

__all__ = ["render_trace"]

_INDENT = "    "
_LABEL_WIDTH = 12
_MAX_TEXT = 70

_OUTCOME_COLOURS = {"taken": "green", "condition false": "red", "revisit forbidden": "yellow"}


def _short(text: str, limit: int = _MAX_TEXT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mark(result: bool) -> str:
    return click.style("✓", fg="green", bold=True) if result else click.style("✗", fg="red")


def _condition(trace: ConditionTrace | None) -> str:
    """``✓ "text" (natural)``, ``✗ {{ expr }}: reason``, or ``(always)``."""
    if trace is None or trace.kind == "always" or trace.text is None:
        return click.style("(no condition)", dim=True)
    text = _short(trace.text)
    shown = f'"{text}"' if trace.kind == "natural" else text
    reason = f": {trace.reason}" if trace.reason else ""
    kind = click.style(f" ({trace.kind})", dim=True) if trace.kind == "natural" else ""
    why = click.style(f" - {_short(trace.rationale)}", dim=True) if trace.rationale else ""
    return f"{_mark(trace.result)} {shown}{kind}{click.style(reason, fg='yellow')}{why}"


def _section(label: str, lines: Iterable[str]) -> list[str]:
    head = click.style(label.ljust(_LABEL_WIDTH), fg="cyan")
    pad = " " * _LABEL_WIDTH
    return [f"{_INDENT}{head if i == 0 else pad}{line}" for i, line in enumerate(lines)]


def _transition_line(move: TransitionTrace, condition: ConditionTrace | None) -> str:
    priority = click.style(f" p={move.priority}", dim=True) if move.priority != 100 else ""
    if move.outcome == "not tried":
        outcome = click.style("not tried (an earlier transition was taken)", dim=True)
        return f"{move.source} → {move.target}{priority}  {outcome}"
    colour = _OUTCOME_COLOURS.get(move.outcome)
    outcome = click.style(move.outcome, fg=colour, bold=move.outcome == "taken")
    return f"{move.source} → {move.target}{priority}  {outcome}  {_condition(condition)}"


def _tool_lines(events: Iterable[Event]) -> list[str]:
    lines = []
    for event in events:
        if event.event_type is not EventType.TOOL_RESULT:
            continue
        content: dict[str, Any] = event.content
        name = str(content.get("tool", "?"))
        error = _short(str(content.get("error", "")), 120)
        if content.get("ok"):
            lines.append(f"{_mark(True)} {name}")
        elif content.get("fell_back"):
            lines.append(
                f"{click.style('✗', fg='yellow')} {name} failed, used its fallback: {error}"
            )
        else:
            lines.append(f"{_mark(False)} {name} failed: {error}")
    return lines


class _Conditions:
    """The turn's evaluated conditions, each handed out to the one section it explains."""

    def __init__(self, conditions: list[ConditionTrace]) -> None:
        self.all = conditions
        self.used: set[int] = set()

    def take(self, wanted: Callable[[ConditionTrace], bool]) -> list[ConditionTrace]:
        found = []
        for index, condition in enumerate(self.all):
            if index not in self.used and wanted(condition):
                self.used.add(index)
                found.append(condition)
        return found

    def take_one(self, wanted: Callable[[ConditionTrace], bool]) -> ConditionTrace | None:
        for index, condition in enumerate(self.all):
            if index not in self.used and wanted(condition):
                self.used.add(index)
                return condition
        return None


def _moves(trace: Trace, conditions: _Conditions) -> list[str]:
    lines = []
    for move in trace.transitions:
        suffix = f"/{move.source}->{move.target}"
        found = conditions.take_one(lambda c: c.where.endswith(suffix))  # noqa: B023 (called at once)
        lines.append(_transition_line(move, found))
    return lines


def _guidelines(trace: Trace, conditions: _Conditions) -> list[str]:
    checked = conditions.take(lambda c: "guideline " in c.where)
    failed = [c for c in checked if not c.result]
    if not trace.guidelines and not failed:
        return []
    matched = [click.style(name, fg="green", bold=True) for name in trace.guidelines]
    lines = ["matched: " + (", ".join(matched) if matched else "none")]
    lines += [f"{c.where.split('guideline ', 1)[1]} {_condition(c)}" for c in failed]
    return lines


def _reply(trace: Trace, conditions: _Conditions, state: str | None) -> list[str]:
    failed = {
        c.where: c
        for c in reversed(conditions.take(lambda c: c.where.startswith("canned ")))
        if not c.result
    }
    if trace.reply is None:
        return []
    chosen = f" {trace.reply.chosen.removeprefix('canned ')}" if trace.reply.chosen else ""
    if trace.reply.source == "state_prompt" and state:
        chosen = f" of {state}"
    lines = [click.style(trace.reply.source.replace("_", " ") + chosen, bold=True)]
    for candidate, why in trace.reply.skipped:
        reason = failed.get(candidate)
        detail = _condition(reason) if reason is not None else click.style(why, fg="yellow")
        lines.append(f"passed over {candidate}: {detail}")
    return lines


def _collected(entry: dict[str, object]) -> str:
    if entry.get("stored"):
        return f"{_mark(True)} {entry['variable']}"
    return (
        f"{_mark(False)} {entry['variable']}: {click.style(str(entry.get('error')), fg='yellow')}"
    )


def _model_line(model: dict[str, object]) -> str:
    cost = model.get("cost_micros")
    shown = f", ${int(cost) / 1_000_000:.6f}" if isinstance(cost, int) else ""
    return (
        f"{model.get('calls')} call(s), {model.get('input_tokens')} tokens in, "
        f"{model.get('output_tokens')} out{shown}"
    )


def render_trace(
    trace: Trace,
    *,
    journey: str | None,
    state: str | None,
    events: Iterable[Event] = (),
) -> list[str]:
    """The trace of one turn as styled lines (see the module docstring)."""
    conditions = _Conditions(trace.conditions)
    where = f"{journey} / {state}" if journey and state else journey or "no journey"
    at = [click.style(where, bold=True)]
    if trace.path:
        passed = [p.removeprefix(f"{journey}/") if journey else p for p in trace.path]
        at.append(click.style("passed: " + " → ".join(passed), dim=True))
    activation = [
        f"{c.where.removeprefix('journey ')}: {_condition(c)}"
        for c in conditions.take(lambda c: c.where.startswith("journey "))
    ]
    skips = [
        f"{c.where.removesuffix(' skip')}: {_condition(c)}"
        for c in conditions.take(lambda c: c.where.endswith(" skip"))
        if c.result
    ]
    lines = [click.style("  ┄ trace " + "┄" * 40, dim=True)]
    lines += _section("at", at)
    lines += _section("journey", activation)
    lines += _section("skipped", skips)
    lines += _section("moves", _moves(trace, conditions))
    lines += _section("guidelines", _guidelines(trace, conditions))
    lines += _section("reply", _reply(trace, conditions, state))
    lines += _section("tools", _tool_lines(events))
    lines += _section("errors", [click.style(e, fg="red", bold=True) for e in trace.errors])
    lines += _section("read", [_collected(entry) for entry in trace.collected])
    if trace.model is not None:
        lines += _section("model", [_model_line(trace.model)])
    other = conditions.take(lambda c: True)
    lines += _section("other", [f"{c.where}: {_condition(c)}" for c in other])
    return lines
