"""What running conversation tests found: plain data that every report reads.

The runner produces these; the ``test`` command renders them as text, JSON or
JUnit XML, and the pytest plugin as an item's failure. Keeping them free of
formatting means the three outputs cannot disagree about what happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from parlant_runtime.engine.trace import Trace
from parlant_runtime.errors import BundleProblem

__all__ = ["CaseFailure", "CaseResult", "FileResult", "Mismatch", "Outcome", "StepRecord"]


class Outcome(StrEnum):
    """How a case ended."""

    PASSED = "passed"
    FAILED = "failed"
    """An expectation did not hold (or the case asked for something the bundle lacks)."""
    ERROR = "error"
    """A turn raised: the runtime refused the message or broke."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One expectation that did not hold: the key, what was expected, what happened."""

    key: str
    """The ``expect`` key (``state``, ``variables.day``), or ``holds``, ``tools``, ``turn``."""
    expected: Any
    got: Any
    message: str
    """What went wrong in a sentence: ``expected "confirm", got "ask_day"``."""
    line: int | None = None
    """The line of the expectation (or of what the case asked for)."""


@dataclass(frozen=True, slots=True)
class StepRecord:
    """Where one step took the session: the session's path, step by step."""

    number: int
    """1-based."""
    customer: str
    entered: tuple[str, ...]
    """``journey/state`` entered during the step, in order."""
    journey: str | None
    state: str | None
    """Where the session waits after the step."""
    replies: tuple[str, ...]

    def describe(self) -> str:
        """``Book a visit/ask_day -> ...`` or what the session did instead of moving."""
        here = f"{self.journey}/{self.state}" if self.journey is not None else None
        if not self.entered:
            return f"stayed at {here}" if here is not None else "no journey"
        text = " -> ".join(self.entered)
        if here is None:
            return f"{text} (journey ended)"
        if here != self.entered[-1]:
            return f"{text} (back at {here})"
        return text


@dataclass(frozen=True, slots=True)
class CaseFailure:
    """Why a case failed: the step, its mismatches, and the session's path so far."""

    step: int | None
    """1-based number of the failing step; ``None`` when the case failed before its first."""
    customer: str | None
    line: int | None
    mismatches: tuple[Mismatch, ...]
    path: tuple[StepRecord, ...]
    """Every step run, the failing one included."""
    errors: tuple[str, ...] = ()
    """Errors the failing turn recorded (a tool that failed, a chain that did not stop)."""


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One case's outcome."""

    name: str
    line: int | None
    outcome: Outcome
    steps_run: int
    failure: CaseFailure | None = None
    traces: tuple[Trace, ...] = ()
    """The trace of every step that ran (the failing one included): what coverage reads."""

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASSED


@dataclass(frozen=True, slots=True)
class FileResult:
    """One test file's outcome: its cases, or why it could not be read."""

    path: str
    bundle: str | None = None
    cases: tuple[CaseResult, ...] = ()
    problems: tuple[BundleProblem, ...] = field(default=())

    @property
    def readable(self) -> bool:
        return not self.problems

    @property
    def passed(self) -> bool:
        return self.readable and all(case.passed for case in self.cases)
