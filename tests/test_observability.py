"""Logging and OpenTelemetry: what a host sees of the runtime (docs/observability.md).

The library is quiet until the host configures logging; what a turn swallows (a tool,
a plug-in that fails or hangs, a tool that falls back) is logged at WARNING on
``parlant_runtime.engine`` with the workspace and the session, and no private value
reaches any record. With OpenTelemetry (the ``otel`` extra; the SDK's in-memory
exporter and reader here), a turn persisted on SQLite is a ``parlant.turn`` span whose
children are its store, tool and model calls, the metrics are recorded, and no private
value is in any span. Without the extra the library imports and runs (a subprocess in
which the import of ``opentelemetry`` fails).
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from parlant_runtime import MemoryStore, Runtime, bundle_from_data
from parlant_runtime.engine import (
    KnowledgeQuery,
    Passage,
    ScriptedEvaluator,
    ToolRegistry,
    TurnResult,
)
from parlant_runtime.llm import CallPolicy, ModelComposer, ModelUnderstander
from parlant_runtime.llm.openai_chat import OpenAIChatModel
from parlant_runtime.storage.migrate import upgrade
from parlant_runtime.storage.port import Store
from parlant_runtime.storage.sql.store import SqlStore
from parlant_runtime.telemetry import Telemetry
from tests.engine.test_private_values import SECRET, assert_untainted
from tests.engine.test_turns import WS, bundle, chat, edge, journey, tool_state
from tests.llm.fake_provider import echo_brain, serve

ROOT = Path(__file__).resolve().parent.parent

VARIABLES = [
    {"key": "secret", "value": SECRET, "isPrivate": True},
    {"key": "name", "value": "Ada"},
]

LOOKUP = {
    "name": "lookup",
    "parameters": {"type": "object", "properties": {"code": {"type": "string"}}},
}


def tool_flow(**tool: Any) -> dict[str, Any]:
    """``go`` passes through the tool state ``t`` (tool ``lookup``, given the secret)."""
    config = {"arguments": {"code": "{{ vars.secret }}"}, "resultVariable": "found"}
    return bundle(
        journey(
            "J",
            [chat("a", "A."), tool_state("t", "lookup", toolConfig=config), chat("b", "B.")],
            [edge("a", "t", "go"), edge("t", "b")],
        ),
        tools=[LOOKUP | tool],
        variables=[*VARIABLES, {"key": "found", "valueType": "object"}],
    )


async def leaking_tool(arguments: dict[str, Any]) -> Any:
    raise RuntimeError(f"no record for {arguments['code']} ({arguments['code'][::-1]})")


async def fine_tool(arguments: dict[str, Any]) -> Any:
    return {"found": True}


async def run_turns(
    store: Store,
    data: dict[str, Any],
    messages: Sequence[tuple[str, Sequence[str]]],
    *,
    tools: Mapping[str, Any] | None = None,
    **runtime: Any,
) -> tuple[Runtime, list[TurnResult]]:
    """Publish ``data``, start a session with the secret set, send each message."""
    try:
        await store.ensure_workspace(WS)
        if isinstance(store, MemoryStore):  # knowledge bases are the host's: made first
            kbs = [kb["knowledgeBaseId"] for kb in data.get("knowledgeBases", ())]
            await store.ensure_knowledge_bases(WS, kbs)
        agent = (await store.publish(WS, bundle_from_data(data))).agent_id
        registry = ToolRegistry()
        for name, function in (tools or {}).items():
            registry.register(name, function)
        evaluator = runtime.pop("evaluator", None) or ScriptedEvaluator()
        run = Runtime(store, evaluator=evaluator, tools=registry, **runtime)
        session = await run.start_session(WS, agent, variables={"secret": SECRET})
        results = []
        for text, holds in messages:
            if isinstance(evaluator, ScriptedEvaluator):
                evaluator.set(holds)
            results.append(await run.process_message(WS, session.id, text))
        return run, results
    finally:
        await store.close()


# ---------------------------------------------------------------------- logging


def test_the_library_adds_only_a_null_handler_and_sets_no_level() -> None:
    import parlant_runtime

    root = logging.getLogger(parlant_runtime.__name__)
    assert [type(h) for h in root.handlers] == [logging.NullHandler]
    assert root.level == logging.NOTSET
    assert root.propagate


class Hanging:
    async def evaluate(
        self, conditions: Sequence[str], *, message: str, context: Mapping[str, Any]
    ) -> Mapping[str, bool]:
        await asyncio.sleep(10)
        return {}


class Raising:
    async def evaluate(
        self, conditions: Sequence[str], *, message: str, context: Mapping[str, Any]
    ) -> Mapping[str, bool]:
        raise ValueError("the evaluator broke")


class FailingRetriever:
    async def retrieve(self, queries: Sequence[KnowledgeQuery]) -> Sequence[Sequence[Passage]]:
        raise OSError("the search index is down")


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        pytest.param("tool", "lookup", id="a-failing-tool"),
        pytest.param("fallback", "fell back", id="a-tool-that-falls-back"),
        pytest.param("raising", "the evaluator broke", id="a-raising-evaluator"),
        pytest.param("hanging", "took longer than", id="a-hanging-evaluator"),
        pytest.param("retriever", "knowledge-base search failed", id="a-failing-retriever"),
    ],
)
def test_what_a_turn_swallows_is_logged_at_warning_with_workspace_and_session(
    case: str, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="parlant_runtime")
    data = tool_flow(errorHandling={"onError": "fallback", "fallback": {"found": False}})
    if case != "fallback":
        data = tool_flow()
    runtime: dict[str, Any] = {"tools": {"lookup": leaking_tool}}
    if case == "raising":
        runtime = {"evaluator": Raising()}
    elif case == "hanging":
        runtime = {"evaluator": Hanging(), "plugin_timeout": 0.05}
    elif case == "retriever":
        data["knowledgeBases"] = [{"knowledgeBaseId": "faq"}]
        runtime = {"retriever": FailingRetriever(), "tools": {"lookup": fine_tool}}
    _, results = asyncio.run(
        run_turns(MemoryStore(), data, [("hi", ["start"]), ("go on", ["go"])], **runtime)
    )
    session = results[-1].session.id
    warnings = [
        r for r in caplog.records if r.name == "parlant_runtime.engine" and r.levelname == "WARNING"
    ]
    assert warnings, "nothing was logged"
    text = [r.getMessage() for r in warnings]
    assert any(expected in t and WS in t and str(session) in t for t in text), text


def test_a_turn_without_failures_logs_no_warning_and_a_debug_summary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="parlant_runtime")
    _, results = asyncio.run(
        run_turns(
            MemoryStore(),
            tool_flow(),
            [("hi", ["start"]), ("go on", ["go"])],
            tools={"lookup": fine_tool},
        )
    )
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    summaries = [
        r.getMessage()
        for r in caplog.records
        if r.name == "parlant_runtime.engine" and r.levelno == logging.DEBUG
    ]
    assert any(
        str(results[-1].session.id) in s and "state b" in s and "['lookup']" in s for s in summaries
    ), summaries


def test_no_private_value_reaches_any_log_record(caplog: pytest.LogCaptureFixture) -> None:
    """The tool is given the secret and quotes it (and its reverse) when it fails; a
    condition fails while reading it; every logger at DEBUG."""
    caplog.set_level(logging.DEBUG)
    data = tool_flow()
    data["guidelines"] = [
        {"name": "bad", "condition": "{{ {}[vars.secret | upper] }}", "action": "Never."}
    ]
    asyncio.run(
        run_turns(
            MemoryStore(),
            data,
            [("hi", ["start"]), ("go on", ["go"])],
            tools={"lookup": leaking_tool},
        )
    )
    assert any("lookup" in r.getMessage() for r in caplog.records)  # the failure is there
    assert_untainted(*(r.getMessage() for r in caplog.records))


def test_a_store_without_its_listen_connection_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PostgreSQL notifications cannot be had (nothing listens on the port): waiters
    poll, which works; the store says so once at WARNING, then at DEBUG."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from parlant_runtime.storage.sql.notify import EventNotifier

    caplog.set_level(logging.DEBUG, logger="parlant_runtime.storage")

    async def main() -> None:
        engine = create_async_engine("postgresql+asyncpg://nobody:hidden@127.0.0.1:9/none")
        notifier = EventNotifier(engine, poll_interval=0.01)
        for _ in range(3):
            async with notifier.watch(UUID(int=1)) as woken:
                await woken(0.01)
        await notifier.close()
        await engine.dispose()

    asyncio.run(main())
    levels = [r.levelname for r in caplog.records if r.name == "parlant_runtime.storage"]
    assert levels == ["WARNING", "DEBUG", "DEBUG"]
    assert "poll" in caplog.records[0].getMessage()
    assert all("hidden" not in r.getMessage() for r in caplog.records)


def test_storage_retries_are_logged_with_the_error_class_only(
    caplog: pytest.LogCaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection that cannot be had is tried again (the store's retries): each retry
    is an INFO record of ``parlant_runtime.storage`` naming the error's class, not its
    message (which may quote what was written)."""
    from sqlalchemy.ext.asyncio import AsyncEngine

    caplog.set_level(logging.INFO, logger="parlant_runtime.storage")
    url = f"sqlite:///{tmp_path / 'parlant.db'}"
    real = AsyncEngine.connect
    refusals = {"left": 0}

    def flaky(engine: AsyncEngine) -> Any:
        if refusals["left"]:
            refusals["left"] -= 1
            raise ConnectionRefusedError(f"refused {SECRET}")
        return real(engine)

    async def main() -> None:
        await upgrade(url)
        store = SqlStore.open(url)
        monkeypatch.setattr(AsyncEngine, "connect", flaky)
        try:
            refusals["left"] = 1
            await store.ensure_workspace(WS)  # a write
            refusals["left"] = 1
            await store.find_agent(WS, "nobody")  # a read
        finally:
            monkeypatch.undo()
            await store.close()

    asyncio.run(main())
    shown = [r.getMessage() for r in caplog.records if r.name == "parlant_runtime.storage"]
    assert shown == [
        "write retried (attempt 2): ConnectionRefusedError",
        "read connection retried (attempt 2): ConnectionRefusedError",
    ]


# ---------------------------------------------------------------------- OpenTelemetry


class Exported:
    """An SDK tracer and meter provider with in-memory exporter and reader."""

    def __init__(self) -> None:
        self.spans_exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans_exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.telemetry = Telemetry(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def spans(self) -> tuple[ReadableSpan, ...]:
        return tuple(self.spans_exporter.get_finished_spans())

    def metrics(self) -> dict[str, list[Any]]:
        """Data points by metric name."""
        found: dict[str, list[Any]] = {}
        data = self.reader.get_metrics_data()
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found


@pytest.fixture
def exported() -> Iterator[Exported]:
    found = Exported()
    yield found
    found.tracer_provider.shutdown()
    found.meter_provider.shutdown()


def children(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def everything_in(spans: Sequence[ReadableSpan]) -> str:
    """Every span's name, attributes, status and events, as text."""
    shown = [
        [
            s.name,
            dict(s.attributes or {}),
            s.status.description,
            [[e.name, dict(e.attributes or {})] for e in s.events],
        ]
        for s in spans
    ]
    return json.dumps(shown, default=str)


def test_a_persisted_turn_is_a_span_with_its_store_and_tool_calls_as_children(
    exported: Exported, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'parlant.db'}"

    async def main() -> list[TurnResult]:
        await upgrade(url)
        _, results = await run_turns(
            SqlStore.open(url),
            tool_flow(),
            [("hi", ["start"]), ("go on", ["go"])],
            tools={"lookup": leaking_tool},
            telemetry=exported.telemetry,
        )
        return results

    results = asyncio.run(main())
    spans = exported.spans()
    turns = [s for s in spans if s.name == "parlant.turn"]
    assert len(turns) == 2
    last = turns[-1]
    attributes = dict(last.attributes or {})
    assert attributes["parlant.workspace"] == WS
    assert attributes["parlant.session.id"] == str(results[-1].session.id)
    assert attributes["parlant.agent.id"] == str(results[-1].session.agent_id)
    assert attributes["parlant.operation"] == "process_message"
    assert attributes["parlant.journey"] == "J"
    assert attributes["parlant.state"] == "a"  # the tool failed: back where it waited
    assert attributes["parlant.replies"] == len(results[-1].replies)
    assert attributes["parlant.duplicate"] is False
    assert attributes["parlant.errors"] == 1
    names = [s.name for s in children(spans, last)]
    assert "parlant.store.read_turn" in names
    assert "parlant.store.record_turn" in names
    assert "parlant.tool" in names
    tool = next(s for s in children(spans, last) if s.name == "parlant.tool")
    assert dict(tool.attributes or {})["parlant.tool.name"] == "lookup"
    assert dict(tool.attributes or {})["parlant.tool.ok"] is False
    assert last.start_time is not None
    assert tool.start_time is not None
    assert last.start_time <= tool.start_time
    starts = [s for s in spans if s.name == "parlant.session.start"]
    assert len(starts) == 1
    assert children(spans, starts[0])  # its store calls
    commit = next(s for s in spans if s.name == "parlant.store.record_turn")
    assert dict(commit.attributes or {})["parlant.workspace"] == WS

    metrics = exported.metrics()
    assert sum(p.count for p in metrics["parlant.turn.duration"]) == 2
    (failed,) = [
        p for p in metrics["parlant.tool.calls"] if p.attributes["parlant.tool.ok"] is False
    ]
    assert failed.value == 1
    assert failed.attributes["parlant.tool.name"] == "lookup"
    assert sum(p.count for p in metrics["parlant.tool.duration"]) == 1
    methods = {p.attributes["parlant.store.method"] for p in metrics["parlant.store.duration"]}
    assert {"read_turn", "record_turn", "create_session"} <= methods

    assert_untainted(everything_in(spans))


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
def test_model_calls_are_children_of_the_turn_with_their_tokens(
    exported: Exported, streamed: bool
) -> None:
    policy = CallPolicy(timeout=2.0, retries=0)
    data = bundle(journey("J", [chat("a", "Hello there.")], conditions=["start"]))

    async def main(model: OpenAIChatModel) -> None:
        store = MemoryStore()
        await store.ensure_workspace(WS)
        agent = (await store.publish(WS, bundle_from_data(data))).agent_id
        runtime = Runtime(
            store,
            language_model=model,
            evaluator=ModelUnderstander(model, policy=policy),
            generator=ModelComposer(model, policy=policy),
            telemetry=exported.telemetry,
        )
        session = await runtime.start_session(WS, agent)
        if streamed:
            chunks = [c async for c in runtime.stream_message(WS, session.id, "start please")]
            assert isinstance(chunks[-1], TurnResult)
        else:
            await runtime.process_message(WS, session.id, "start please")

    with serve(echo_brain) as fake:
        asyncio.run(main(OpenAIChatModel("gpt-test", base_url=f"{fake.url}/v1", api_key="k")))
    assert [call.stream for call in fake.calls] == [False, streamed]
    spans = exported.spans()
    (turn,) = [s for s in spans if s.name == "parlant.turn"]
    models = [s for s in children(spans, turn) if s.name == "parlant.model"]
    assert len(models) == len(fake.calls) >= 1
    for span in models:
        attributes = dict(span.attributes or {})
        assert attributes["gen_ai.request.model"] == "openai:gpt-test"
        assert attributes["parlant.model.ok"] is True
        assert int(str(attributes["gen_ai.usage.input_tokens"])) > 0
        assert int(str(attributes["gen_ai.usage.output_tokens"])) > 0
    tokens = exported.metrics()["parlant.model.tokens"]
    assert {p.attributes["gen_ai.token.type"] for p in tokens} == {"input", "output"}
    assert all(p.value > 0 for p in tokens)
    assert_untainted(everything_in(spans))


def test_a_failed_call_marks_its_span_with_the_error_type_only(exported: Exported) -> None:
    from parlant_runtime.storage.port import NotFound

    async def main() -> None:
        store = MemoryStore()
        await store.ensure_workspace(WS)
        runtime = Runtime(store, telemetry=exported.telemetry)
        with pytest.raises(NotFound):
            await runtime.process_message(WS, bundle_from_data(tool_flow()).agent.id, SECRET)

    asyncio.run(main())
    (turn,) = [s for s in exported.spans() if s.name == "parlant.turn"]
    assert dict(turn.attributes or {})["error.type"] == "NotFound"
    assert turn.status.description == "NotFound"
    assert_untainted(everything_in(exported.spans()))


def test_the_store_is_wrapped_only_while_telemetry_is_on() -> None:
    store = MemoryStore()
    assert Runtime(store, telemetry=Telemetry(enabled=False)).store is store
    traced = Runtime(store).store
    assert traced is not store
    assert traced.wrapped is store  # type: ignore[attr-defined]
    assert isinstance(traced, Store)


def _run_case(tmp_path: Path, script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a Python of its own with the tool flow's bundle and the
    workspace as arguments; it must succeed."""
    (tmp_path / "case.py").write_text(script)
    done = subprocess.run(
        [sys.executable, str(tmp_path / "case.py"), json.dumps(tool_flow()), WS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.subprocess
def test_the_library_runs_without_opentelemetry_installed(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        sys.modules["opentelemetry"] = None  # any import of it fails, as when not installed
        from parlant_runtime import MemoryStore, Runtime, bundle_from_data
        from parlant_runtime import telemetry
        from parlant_runtime.engine import ScriptedEvaluator, ToolRegistry
        import json
        DATA, WS = json.loads(sys.argv[1]), sys.argv[2]

        async def main():
            store = MemoryStore()
            await store.ensure_workspace(WS)
            agent = (await store.publish(WS, bundle_from_data(DATA))).agent_id
            tools = ToolRegistry()
            async def lookup(arguments):
                return {"found": True}
            tools.register("lookup", lookup)
            runtime = Runtime(store, evaluator=ScriptedEvaluator(["start", "go"]), tools=tools)
            assert runtime.store is store, "wrapped without OpenTelemetry"
            session = await runtime.start_session(WS, agent)
            await runtime.process_message(WS, session.id, "hi")
            result = await runtime.process_message(WS, session.id, "go")
            print(telemetry.AVAILABLE, result.state, list(result.tool_calls))

        asyncio.run(main())
        """
    )
    done = _run_case(tmp_path, script)
    assert done.stdout.split() == ["False", "b", "['lookup']"]


@pytest.mark.subprocess
def test_the_global_providers_are_followed_even_when_set_after_the_runtime(
    tmp_path: Path,
) -> None:
    """What a host that already exports gets with the default ``Telemetry()`` (global
    providers can be set once per process, hence a process of its own)."""
    script = textwrap.dedent(
        """
        import asyncio, json, sys
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )
        from parlant_runtime import MemoryStore, Runtime, bundle_from_data
        from parlant_runtime.engine import ScriptedEvaluator

        DATA, WS = json.loads(sys.argv[1]), sys.argv[2]

        async def main():
            store = MemoryStore()
            runtime = Runtime(store, evaluator=ScriptedEvaluator(["start"]))
            await store.ensure_workspace(WS)
            agent = (await store.publish(WS, bundle_from_data(DATA))).agent_id
            session = await runtime.start_session(WS, agent)  # before: no span
            exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            trace.set_tracer_provider(provider)
            metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
            await runtime.process_message(WS, session.id, "hi")
            names = sorted({s.name for s in exporter.get_finished_spans()})
            found = reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics
            print(json.dumps([names, sorted({m.name for m in found})]))

        asyncio.run(main())
        """
    )
    done = _run_case(tmp_path, script)
    spans, metrics = json.loads(done.stdout)
    assert "parlant.session.start" not in spans
    assert "parlant.turn" in spans
    assert "parlant.store.record_turn" in spans
    assert {"parlant.turn.duration", "parlant.store.duration"} <= set(metrics)
