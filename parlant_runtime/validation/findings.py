"""Validation findings: the codes, their severities, and the report that collects them.

The codes and their meaning are a public contract (``docs/validation.md``):
new codes may be added, existing ones never change meaning or severity.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["CODE_INFO", "Code", "CodeInfo", "Finding", "Severity", "ValidationReport"]


class Severity(StrEnum):
    """How much a finding matters: errors block publishing, warnings do with ``--strict``."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Code(StrEnum):
    """Every validation code, as the contract names them."""

    NO_INITIAL_STATE = "no_initial_state"
    MULTIPLE_INITIAL_STATES = "multiple_initial_states"
    UNREACHABLE_STATE = "unreachable_state"
    DEAD_END = "dead_end"
    CANNOT_REACH_FINAL = "cannot_reach_final"
    NO_FINAL_STATE = "no_final_state"
    FINAL_HAS_OUTGOING = "final_has_outgoing"
    DANGLING_REFERENCE = "dangling_reference"
    INVALID_STATE = "invalid_state"
    SELF_TRANSITION = "self_transition"
    DUPLICATE_TRANSITION = "duplicate_transition"
    SHADOWED_TRANSITION = "shadowed_transition"
    AMBIGUOUS_PRIORITY = "ambiguous_priority"
    NO_FALLBACK = "no_fallback"
    AUTO_ADVANCE_CYCLE = "auto_advance_cycle"
    REVISIT_CYCLE = "revisit_cycle"
    INVALID_TEMPLATE = "invalid_template"
    INVALID_CONDITION = "invalid_condition"
    UNDEFINED_VARIABLE = "undefined_variable"
    UNUSED_TOOL = "unused_tool"
    INVALID_TOOL = "invalid_tool"
    UNBRACED_EXPRESSION = "unbraced_expression"


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """A code's fixed severity and its one-line description (SARIF rules, docs)."""

    severity: Severity
    summary: str


_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO

CODE_INFO: dict[Code, CodeInfo] = {
    Code.NO_INITIAL_STATE: CodeInfo(_E, "The journey has no initial state."),
    Code.MULTIPLE_INITIAL_STATES: CodeInfo(_E, "More than one state is initial."),
    Code.UNREACHABLE_STATE: CodeInfo(_E, "No path from the initial state reaches the state."),
    Code.DEAD_END: CodeInfo(_E, "A non-final state has no outgoing transition."),
    Code.CANNOT_REACH_FINAL: CodeInfo(
        _E, "From a reachable state no final state can be reached (a trap)."
    ),
    Code.NO_FINAL_STATE: CodeInfo(_E, "The journey has no final state."),
    Code.FINAL_HAS_OUTGOING: CodeInfo(_E, "A final state has outgoing transitions."),
    Code.DANGLING_REFERENCE: CodeInfo(
        _E, "A name points at a state, tool, guideline, term or journey that does not exist."
    ),
    Code.INVALID_STATE: CodeInfo(_E, "A state's content does not fit its type."),
    Code.SELF_TRANSITION: CodeInfo(_W, "A transition goes from a state to itself."),
    Code.DUPLICATE_TRANSITION: CodeInfo(_W, "Two transitions share source, target and condition."),
    Code.SHADOWED_TRANSITION: CodeInfo(
        _W, "A transition can never be taken: an always-true sibling is tried first."
    ),
    Code.AMBIGUOUS_PRIORITY: CodeInfo(
        _I, "Conditional siblings share a priority, so their order carries no meaning."
    ),
    Code.NO_FALLBACK: CodeInfo(
        _I, "A state that does not wait has only conditional exits and may stop with none true."
    ),
    Code.AUTO_ADVANCE_CYCLE: CodeInfo(
        _E, "A cycle of states that never wait for the customer can loop forever in one turn."
    ),
    Code.REVISIT_CYCLE: CodeInfo(
        _W, "The journey forbids revisiting but has a cycle: some transitions can never fire."
    ),
    Code.INVALID_TEMPLATE: CodeInfo(
        _E, "A template does not parse or uses what the sandbox forbids."
    ),
    Code.INVALID_CONDITION: CodeInfo(_E, "An expression condition does not parse."),
    Code.UNDEFINED_VARIABLE: CodeInfo(
        _W, "A template or expression reads a variable that nothing defines or sets."
    ),
    Code.UNUSED_TOOL: CodeInfo(_I, "A declared tool is used by no state and no guideline."),
    Code.INVALID_TOOL: CodeInfo(
        _E, "A tool's errorHandling or JSON Schemas are wrong, so every call of it would fail."
    ),
    Code.UNBRACED_EXPRESSION: CodeInfo(
        _W, "A condition reads like an expression but has no {{ }}, so it is natural language."
    ),
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the validator found, pointing at where to fix it.

    Attributes:
        code: what kind of problem (its severity is fixed by the code).
        journey: the journey's title, or ``None`` for agent-level findings.
        states: the names of the states it concerns.
        message: one sentence a person can act on.
        field: the field path in the bundle (``journeys[0].transitions[3]``).
        line: the line in the bundle file, when known.
        example: for findings about paths, state names of a path that shows it.
    """

    code: Code
    journey: str | None
    states: tuple[str, ...]
    message: str
    field: str
    line: int | None = None
    example: tuple[str, ...] | None = None

    @property
    def severity(self) -> Severity:
        """The code's severity."""
        return CODE_INFO[self.code].severity

    def to_dict(self) -> dict[str, Any]:
        """The finding as the JSON output of ``validate`` shows it."""
        return {
            "code": self.code.value,
            "severity": self.severity.value,
            "journey": self.journey,
            "states": list(self.states),
            "message": self.message,
            "path": {"field": self.field, "line": self.line},
            "example": list(self.example) if self.example is not None else None,
        }


_SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """Every finding of one bundle, ordered by line, then severity."""

    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, findings: list[Finding]) -> ValidationReport:
        """A report with findings in a stable, readable order."""
        ordered = sorted(
            findings,
            key=lambda f: (
                f.line is None,
                f.line or 0,
                _SEVERITY_ORDER[f.severity],
                f.code.value,
                f.field,
                f.states,
            ),
        )
        return cls(tuple(ordered))

    def count(self, severity: Severity) -> int:
        """How many findings have this severity."""
        return sum(1 for finding in self.findings if finding.severity is severity)

    @property
    def errors(self) -> tuple[Finding, ...]:
        """The findings that block publishing."""
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def ok(self) -> bool:
        """Whether there is no error (warnings and infos allowed)."""
        return not self.errors

    def codes(self) -> Counter[Code]:
        """How often each code occurs."""
        return Counter(finding.code for finding in self.findings)

    def passes(self, *, strict: bool = False) -> bool:
        """No errors; with ``strict``, no warnings either."""
        if strict:
            return self.count(Severity.ERROR) == 0 and self.count(Severity.WARNING) == 0
        return self.ok
