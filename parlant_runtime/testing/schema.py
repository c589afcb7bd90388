"""The shape of a conversation test file, as pydantic models.

The contract is ``docs/testing.md``: a file names a bundle and
holds cases; a case is a scripted dialogue of steps; a step says what the customer
writes, which natural-language conditions hold, which variables an extractor would
set, and what must be true afterwards. Keys are snake_case as the contract spells
them, and unknown keys are refused, so a typo (``reply_contain``) fails loudly
instead of silently checking nothing.

``expect`` keys are all optional. ``journey`` and ``state`` accept ``null`` (no
journey any more), so whether a key was given is read from ``model_fields_set``,
never from its value.
"""

from __future__ import annotations

import re
from typing import Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from parlant_runtime.model import EventType

__all__ = [
    "CONVERSATION_FILE_SUFFIX",
    "EXPECT_KEYS",
    "CallResult",
    "Case",
    "ConversationSpec",
    "Expect",
    "Step",
    "ToolCallExpect",
    "ToolStub",
]

CONVERSATION_FILE_SUFFIX = ".conversation.yaml"
"""How a conversation test file's name ends: what folders are searched for, and what the
pytest plugin collects (a file named on the command line is read whatever its name)."""

EXPECT_KEYS: tuple[str, ...] = (
    "journey",
    "state",
    "reply",
    "reply_contains",
    "reply_matches",
    "no_reply",
    "variables",
    "tool_calls",
    "guidelines",
    "events",
)
"""Every ``expect`` key, in the order they are checked and reported."""


_T = TypeVar("_T")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


def _non_json(value: Any, where: str) -> str | None:
    """Where ``value`` holds something JSON cannot (YAML reads 2024-05-01 as a date)."""
    if value is None or isinstance(value, str | bool | int | float):
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _non_json(item, f"{where}[{index}]")
            if found:
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _non_json(item, f"{where}.{key}" if where else str(key))
            if found:
                return found
        return None
    kind = type(value).__name__
    return f'{where or "the value"} is a YAML {kind}, not JSON data; quote it: "{value}"'


def _json_data(value: _T) -> _T:
    problem = _non_json(value, "")
    if problem is not None:
        raise ValueError(problem)
    return value


class Expect(_Strict):
    """What must hold after a step; each key given is checked, the others are not."""

    journey: str | None = None
    """Title of the active journey after the step; ``null``: no journey (it finished)."""
    state: str | None = None
    """Name of the state the session waits in; ``null``: none."""
    reply: str | None = None
    """The reply, exactly (several replies are joined with a newline)."""
    reply_contains: str | None = None
    """Text the reply contains."""
    reply_matches: str | None = None
    """A regular expression found in the reply (``re.search``)."""
    no_reply: bool | None = None
    """``true``: the agent said nothing; ``false``: it said something."""
    variables: dict[str, Any] | None = None
    """A subset of the session's variables (private ones included), by key."""
    tool_calls: list[str | ToolCallExpect] | None = None
    """The tools this step called, in order: each a name, or ``{tool: name, arguments:
    {...}}`` to check the arguments too (those given; a subset)."""
    guidelines: list[str] | None = None
    """Names of the guidelines this step matched, highest priority first."""
    events: list[EventType] | None = None
    """Types of the events this step appended, in order."""

    @field_validator(
        "reply",
        "reply_contains",
        "reply_matches",
        "no_reply",
        "variables",
        "tool_calls",
        "guidelines",
        "events",
        mode="before",
    )
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null; remove the key, or use `no_reply: true`")
        return value

    @field_validator("variables")
    @classmethod
    def _variables_are_json(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _json_data(value)

    @field_validator("reply_matches")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    def given(self) -> list[str]:
        """The keys the file gave, in :data:`EXPECT_KEYS` order."""
        return [key for key in EXPECT_KEYS if key in self.model_fields_set]


class Step(_Strict):
    """One customer message and what must hold once the agent has answered it."""

    customer: str
    """What the customer writes."""
    holds: list[str] = Field(default_factory=list)
    """Natural-language conditions true at this step; all others are false."""
    set: dict[str, Any] = Field(default_factory=dict)
    """Variables set before the step runs, as an extractor would."""
    expect: Expect = Field(default_factory=Expect)

    @field_validator("set")
    @classmethod
    def _set_is_json(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _json_data(value)


class ToolCallExpect(_Strict):
    """An expected tool call with its arguments: ``{tool: check_slots, arguments: {...}}``."""

    tool: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)
    """The arguments to check (a subset: those not listed are not checked). An argument
    fed by a private variable reads ``"[private]"``, as in the events."""

    @field_validator("arguments")
    @classmethod
    def _arguments_json(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _json_data(value)


class CallResult(_Strict):
    """What one call of a stubbed tool does: ``{returns: value}`` or ``{raises: "message"}``."""

    returns: Any = None
    raises: str | None = None

    @field_validator("returns")
    @classmethod
    def _returns_json(cls, value: Any) -> Any:
        return _json_data(value)

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        given = self.model_fields_set & {"returns", "raises"}
        if len(given) != 1:
            raise ValueError("a call result gives exactly one of `returns` or `raises`")
        if "raises" in given and not (self.raises or "").strip():
            raise ValueError("`raises` needs the error message the tool fails with")
        return self


class ToolStub(_Strict):
    """A tool's stubbed behaviour: ``{returns: value}`` or ``{raises: "message"}`` for
    every call, or ``{calls: [...]}``: one result per call, in order (a call past the
    last one fails with an error that says so)."""

    returns: Any = None
    raises: str | None = None
    calls: list[CallResult] | None = None

    @field_validator("returns")
    @classmethod
    def _returns_json(cls, value: Any) -> Any:
        return _json_data(value)

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        given = self.model_fields_set & {"returns", "raises", "calls"}
        if len(given) != 1:
            raise ValueError("a tool stub gives exactly one of `returns`, `raises` or `calls`")
        if "raises" in given and not (self.raises or "").strip():
            raise ValueError("`raises` needs the error message the tool fails with")
        if "calls" in given and not self.calls:
            raise ValueError("`calls` lists one result per call; give at least one")
        return self

    def results(self) -> list[CallResult]:
        """One result per call, in order; a stub for every call is a list of one."""
        if self.calls is not None:
            return list(self.calls)
        if "raises" in self.model_fields_set:
            return [CallResult(raises=self.raises)]
        return [CallResult(returns=self.returns)]


class Case(_Strict):
    """One scripted dialogue, run on a fresh session of a fresh store."""

    name: str = Field(min_length=1)
    variables: dict[str, Any] = Field(default_factory=dict)
    """The session's starting variables."""
    tools: dict[str, ToolStub] = Field(default_factory=dict)
    """Stubbed tools, by tool name; a tool that is not stubbed has no function."""
    steps: list[Step] = Field(min_length=1)

    @field_validator("variables")
    @classmethod
    def _variables_are_json(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _json_data(value)


class ConversationSpec(_Strict):
    """A whole conversation test file."""

    bundle: str | None = None
    """The bundle file, relative to the test file (``--bundle`` overrides it)."""
    cases: list[Case] = Field(min_length=1)

    @field_validator("bundle")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must name a bundle file, or be left out and given with --bundle")
        return value
