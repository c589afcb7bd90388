"""Running conversation tests: each case a scripted dialogue on a fresh store.

A case gets its own :class:`MemoryStore` with the bundle published, a
:class:`ScriptedEvaluator` (natural-language conditions are false unless the
step's ``holds`` lists them; expression conditions are evaluated for real) and a
:class:`ToolRegistry` holding only the case's stubs (a tool without a stub has
no function, so a tool state calling it records an error event). Each step sets
the evaluator, sends the customer's message with the step's ``set`` variables,
and checks the ``expect`` keys. The first step with a mismatch ends the case.

Nothing here reads the clock or the network: the same file gives the same result
on every run. With a language model (``language_model``) the model decides the
conditions, reads the variables and writes the replies, and ``holds`` is ignored;
the CLI then records its HTTP exchanges once and replays them
(:mod:`parlant_runtime.llm.recording`), so that such a run is deterministic too.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from parlant_runtime.bundle import AgentBundle, read_bundle
from parlant_runtime.engine.compiled import natural_texts
from parlant_runtime.engine.conditions import ScriptedEvaluator, normalise
from parlant_runtime.engine.runtime import Runtime, TurnResult
from parlant_runtime.engine.tools import ToolFailure, ToolFunction, ToolRegistry
from parlant_runtime.engine.trace import Trace
from parlant_runtime.errors import BundleError
from parlant_runtime.model import EventType, VariableScope
from parlant_runtime.storage import MemoryStore, StorageError
from parlant_runtime.testing.expect import Observed, check_expect
from parlant_runtime.testing.loader import (
    ConversationFile,
    ConversationFileError,
    Problem,
    read_conversation_file,
    resolve_bundle,
)
from parlant_runtime.testing.results import (
    CaseFailure,
    CaseResult,
    FileResult,
    Mismatch,
    Outcome,
    StepRecord,
)
from parlant_runtime.testing.schema import Case, Step, ToolStub

if TYPE_CHECKING:
    from parlant_runtime.llm import LanguageModel

__all__ = [
    "CUSTOMER_ID",
    "WORKSPACE",
    "AgentHost",
    "ToolStubError",
    "load_case_bundle",
    "run_case",
    "run_conversation_file",
    "stub_registry",
]

WORKSPACE = "conversation-tests"
"""The workspace every case's fresh store runs in."""

CUSTOMER_ID = "conversation-test-customer"
"""The customer of every case's session."""


class ToolStubError(ToolFailure):
    """What a ``{raises: message}`` stub raises: the tool's failure, as a real tool's would be.

    The engine catches it like any exception a tool raises and records
    ``raised ToolStubError: <message>`` in the ``tool_result`` event.
    """


def stub_registry(tools: Mapping[str, ToolStub]) -> ToolRegistry:
    """A registry with one async function per stub: it returns a copy, or raises; a stub
    with ``calls`` answers each invocation (a retry too) with the next result."""
    registry = ToolRegistry()
    for name, stub in tools.items():
        registry.register(name, _stub_function(name, stub))
    return registry


def _stub_function(name: str, stub: ToolStub) -> ToolFunction:
    results = stub.results()
    repeat = stub.calls is None  # `returns`/`raises` answer every call alike
    made = 0

    async def answer(arguments: dict[str, Any]) -> Any:
        nonlocal made
        made += 1
        if not repeat and made > len(results):
            raise ToolStubError(
                f"the stub of {name!r} lists {len(results)} call(s) and this is call {made}; "
                "add a result to its `calls`"
            )
        result = results[0] if repeat else results[made - 1]
        if "raises" in result.model_fields_set:
            raise ToolStubError(result.raises or "")
        return copy.deepcopy(result.returns)

    return answer


def load_case_bundle(
    loaded: ConversationFile, override: str | Path | None = None
) -> tuple[str, AgentBundle]:
    """The bundle a file runs against (its path as shown, and the bundle).

    Raises:
        ConversationFileError: no bundle is named, or it cannot be loaded (its own
            problems are listed, after one that points at the test file).
    """
    path = resolve_bundle(loaded, override)
    try:
        return str(path), read_bundle(path).bundle
    except BundleError as exc:
        where = "--bundle" if override is not None else "bundle"
        line = None if override is not None else loaded.line_of("bundle")
        heading = Problem(
            loaded.path, line, where, f"the bundle {str(path)!r} cannot be loaded (see below)"
        )
        raise ConversationFileError([heading, *exc.problems]) from None


async def run_conversation_file(
    path: str | Path,
    *,
    bundle: str | Path | None = None,
    language_model: LanguageModel | None = None,
) -> FileResult:
    """Read a test file and run every case; an unreadable file is a result too.

    With ``language_model`` the model decides what ``holds`` would (see the module
    docstring)."""
    try:
        loaded = read_conversation_file(path)
        bundle_path, agent = load_case_bundle(loaded, bundle)
        cases = [
            await run_case(loaded, index, agent, language_model=language_model)
            for index in range(len(loaded.spec.cases))
        ]
    except ConversationFileError as exc:
        return FileResult(str(path), problems=exc.problems)
    return FileResult(str(path), bundle_path, tuple(cases))


async def run_case(
    loaded: ConversationFile,
    index: int,
    bundle: AgentBundle,
    *,
    host: AgentHost | None = None,
    language_model: LanguageModel | None = None,
) -> CaseResult:
    """Run case ``index`` of ``loaded`` against ``bundle`` on a fresh store (or on
    ``host``, where ``bundle`` is published already: a fresh session of the same store).
    With ``language_model`` the model decides what ``holds`` would.

    Raises:
        ConversationFileError: the bundle cannot be published (it is refused as a whole).
    """
    return await _CaseRun(loaded, index, language_model).run(bundle, host)


class _CaseTools(ToolRegistry):
    """A registry whose functions are the stubs of the case being run."""

    def use(self, stubs: ToolRegistry) -> None:
        self._functions = {name: f for name in stubs.names() if (f := stubs.get(name))}


class AgentHost:
    """A bundle published once into a memory store, for many cases in turn.

    Each case still gets a fresh session, its own stubs and its own ``holds``; what
    a host shares is the published agent and its compiled form, so checking many
    cases costs one publish instead of one per case. Only a bundle without
    customer-scoped variables may share a host: the store keeps those values per
    customer, across sessions (see :meth:`shareable`).
    """

    def __init__(self, store: MemoryStore, agent_id: UUID) -> None:
        self.store = store
        self.agent_id = agent_id
        self.evaluator = ScriptedEvaluator()
        self.tools = _CaseTools()
        self.runtime = Runtime(store, evaluator=self.evaluator, tools=self.tools)
        self._known: dict[str, str] | None = None

    @classmethod
    async def publish(cls, bundle: AgentBundle) -> AgentHost:
        """A fresh memory store with ``bundle`` published.

        Raises:
            StorageError: the store refuses the bundle.
        """
        store = MemoryStore()
        await store.ensure_workspace(WORKSPACE)
        await store.ensure_knowledge_bases(
            WORKSPACE, [kb.knowledge_base_id for kb in bundle.knowledge_bases]
        )
        return cls(store, (await store.publish(WORKSPACE, bundle)).agent_id)

    @staticmethod
    def shareable(bundle: AgentBundle) -> bool:
        """Whether cases can share one host without seeing each other's values."""
        return all(v.scope is not VariableScope.CUSTOMER for v in bundle.variables)

    async def known(self) -> dict[str, str]:
        """The agent's natural-language conditions, by their loose form."""
        if self._known is None:
            natural = natural_texts((await self.runtime.agent(WORKSPACE, self.agent_id)).conditions)
            self._known = {normalise(text): text for text in natural}
        return self._known


class _CaseRun:
    """One case being run: where its parts are in the file, and the session's path."""

    def __init__(
        self, loaded: ConversationFile, index: int, model: LanguageModel | None = None
    ) -> None:
        self.model = model
        self.loaded = loaded
        self.index = index
        self.case: Case = loaded.spec.cases[index]
        self.line = loaded.line_of("cases", index)
        self.path: list[StepRecord] = []
        self.traces: list[Trace] = []

    def at(self, *path: str | int) -> int | None:
        return self.loaded.line_of("cases", self.index, *path)

    def failed(
        self,
        outcome: Outcome,
        step: int | None,
        mismatches: list[Mismatch],
        errors: tuple[str, ...] = (),
    ) -> CaseResult:
        customer = self.case.steps[step - 1].customer if step is not None else None
        step_line = self.at("steps", step - 1) if step is not None else None
        failure = CaseFailure(
            step, customer, step_line, tuple(mismatches), tuple(self.path), errors
        )
        return CaseResult(
            self.case.name, self.line, outcome, step or 0, failure, tuple(self.traces)
        )

    async def run(self, bundle: AgentBundle, host: AgentHost | None = None) -> CaseResult:
        if host is None:
            try:
                host = await AgentHost.publish(bundle)
            except StorageError as exc:
                where = self.loaded.line_of("bundle")
                problem = Problem(self.loaded.path, where, "bundle", f"cannot publish: {exc}")
                raise ConversationFileError([problem]) from None
        tools = sorted(tool.name for tool in bundle.tools)
        strangers = [
            Mismatch(
                f"tools.{name}",
                name,
                None,
                f"the bundle has no tool {name!r}"
                + _suggest(name, tools, f"; its tools: {', '.join(tools) or 'none'}"),
                self.at("tools", name),
            )
            for name in self.case.tools
            if name not in tools
        ]
        if strangers:
            return self.failed(Outcome.FAILED, None, strangers)
        evaluator, runtime, store, agent_id = (
            host.evaluator,
            host.runtime,
            host.store,
            host.agent_id,
        )
        evaluator.set(())
        host.tools.use(stub_registry(self.case.tools))
        if self.model is not None:  # the model decides what holds would
            runtime = Runtime(store, language_model=self.model, tools=host.tools)
        try:
            session = await runtime.start_session(
                WORKSPACE, agent_id, customer_id=CUSTOMER_ID, variables=self.case.variables
            )
        except Exception as exc:  # bad starting variables: reported like a turn that raised
            message = f"the session could not start: {type(exc).__name__}: {exc}"
            start = Mismatch("variables", None, type(exc).__name__, message, self.at("variables"))
            return self.failed(Outcome.ERROR, None, [start])
        known = await host.known()
        for number, step in enumerate(self.case.steps, start=1):
            unknown = self.unknown_holds(number, step, known) if self.model is None else []
            if unknown:
                return self.failed(Outcome.FAILED, number, unknown)
            evaluator.set(step.holds)
            try:
                result = await runtime.process_message(
                    WORKSPACE, session.id, step.customer, variables=step.set
                )
            except Exception as exc:  # the case reports what the runtime raised; no traceback
                message = f"the turn raised {type(exc).__name__}: {exc}"
                turn = Mismatch("turn", None, type(exc).__name__, message)
                return self.failed(Outcome.ERROR, number, [turn])
            self.path.append(_record(number, step.customer, result))
            self.traces.append(result.trace)
            variables: dict[str, Any] = {}
            if "variables" in step.expect.model_fields_set:
                stored = await store.get_variables(WORKSPACE, session.id)
                # a variable without a value is not set, as templates and conditions see it
                variables = {v.key: v.value for v in stored if v.value is not None}
            found = check_expect(
                step.expect, _observed(result, variables), _ExpectLines(self, number - 1)
            )
            if found:
                return self.failed(Outcome.FAILED, number, found, tuple(result.trace.errors))
        return CaseResult(
            self.case.name,
            self.line,
            Outcome.PASSED,
            len(self.case.steps),
            traces=tuple(self.traces),
        )

    def unknown_holds(self, number: int, step: Step, known: Mapping[str, str]) -> list[Mismatch]:
        """``holds`` entries the agent never asks about: typos that would silently be false."""
        texts = list(known.values())
        return [
            Mismatch(
                "holds",
                text,
                None,
                f"{text!r} is not a natural-language condition of the agent"
                + _suggest(text, texts, "; the agent never asks it"),
                self.at("steps", number - 1, "holds", position),
            )
            for position, text in enumerate(step.holds)
            if normalise(text) not in known
        ]


class _ExpectLines:
    """The line of each ``expect`` key of one step."""

    def __init__(self, run: _CaseRun, step: int) -> None:
        self.run, self.step = run, step

    def __call__(self, key: str) -> int | None:
        return self.run.at("steps", self.step, "expect", key)


def _observed(result: TurnResult, variables: Mapping[str, Any]) -> Observed:
    return Observed(
        journey=result.journey,
        state=result.state,
        replies=result.replies,
        tool_calls=result.tool_calls,
        tool_arguments=tuple(
            dict(event.content.get("arguments") or {})
            for event in result.events
            if event.event_type is EventType.TOOL_CALL
        ),
        guidelines=result.guidelines,
        events=tuple(event.event_type.value for event in result.events),
        variables=variables,
    )


def _record(number: int, customer: str, result: TurnResult) -> StepRecord:
    return StepRecord(
        number=number,
        customer=customer,
        entered=tuple(result.trace.path),
        journey=result.journey,
        state=result.state,
        replies=result.replies,
    )


def _suggest(text: str, known: list[str], otherwise: str) -> str:
    close = difflib.get_close_matches(text, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else otherwise
