"""parlant-runtime: run Parlant-style conversational agents from data.

The public API is what this module exports (``__all__``, listed on one page in
``docs/api.md``), together with the storage conformance suite in
:mod:`parlant_runtime.testing.conformance` (it needs pytest, so it is not imported
here). Every other module is internal and may change between releases: import from
``parlant_runtime``, not from where a name happens to be defined. By concern:

- the runtime: :class:`Runtime`, its results (:class:`TurnResult`, :class:`ReplyChunk`,
  :class:`Trace`) and plug-ins (condition evaluators, understanders, reply generators,
  tools, knowledge-base retrievers, language models), :class:`Telemetry`;
- storage: the :class:`Store` port and what it takes and gives, :class:`MemoryStore`,
  :class:`SqlStore` (``async with SqlStore.open(url) as store``), :func:`database_url`,
  the migrations (:func:`upgrade`, :func:`adopt`);
- bundles: :func:`load_bundle` / :func:`loads_bundle` give an :class:`AgentBundle`,
  :func:`read_bundle` / :func:`reads_bundle` a :class:`LoadedBundle` with line numbers;
  :func:`dump_bundle`, :func:`dumps_bundle`; the ``*Spec`` classes of its parts;
- validation and diagrams: :func:`validate_bundle`, :func:`build_diagram`;
- conversation tests: :func:`run_conversation_file`, :func:`coverage_of`;
- errors: :class:`ParlantRuntimeError` and its subclasses (the tree is drawn in
  ``parlant_runtime/errors.py``).

Every name is imported when first used (``parlant_runtime/_lazy.py``), so
``import parlant_runtime`` loads no layer and a program only the layers it touches:
no database driver until :class:`SqlStore`, :func:`database_url`, :func:`upgrade`,
:func:`adopt`, :class:`AdoptionRefused` or :class:`LayoutRefused` is used, no
validator until :func:`validate_bundle` is, and no networkx until conversation tests
are generated.
"""

import logging as _logging
from typing import TYPE_CHECKING

from parlant_runtime._lazy import lazy_exports

if TYPE_CHECKING:
    from parlant_runtime.bundle import (
        AgentBundle,
        AgentSpec,
        CannedResponseSpec,
        CollectedVariableSpec,
        GuidelineSpec,
        JourneyGuidelineSpec,
        JourneySpec,
        KnowledgeBaseLinkSpec,
        LoadedBundle,
        StateSpec,
        TermSpec,
        ToolIntegrationSpec,
        ToolSpec,
        TransitionSpec,
        VariableSpec,
        bundle_from_data,
        dump_bundle,
        dumps_bundle,
        load_bundle,
        loads_bundle,
        read_bundle,
        reads_bundle,
    )
    from parlant_runtime.diagram import JourneyDiagram, build_diagram, to_dot, to_mermaid
    from parlant_runtime.engine import (
        Candidate,
        CannedChooser,
        CollectSpec,
        ComposeRequest,
        ConditionEvaluator,
        ConditionTrace,
        DeterministicGenerator,
        IntegrationHealth,
        KeywordEvaluator,
        KeywordRetriever,
        KnowledgeError,
        KnowledgeQuery,
        ModelUsage,
        Part,
        Passage,
        Reply,
        ReplyChunk,
        ReplyTrace,
        ResponseGenerator,
        Retriever,
        Runtime,
        ScriptedEvaluator,
        SessionClosed,
        ToolCall,
        ToolError,
        ToolFailure,
        ToolHealth,
        ToolRegistry,
        Trace,
        TransitionTrace,
        TurnContext,
        TurnResult,
        Understander,
        Understanding,
        UnderstandRequest,
        Utterance,
        current_call,
    )
    from parlant_runtime.engine.tools import ToolArgumentError
    from parlant_runtime.errors import (
        BundleError,
        BundleProblem,
        ParlantRuntimeError,
        TemplateSandboxError,
    )
    from parlant_runtime.llm import (
        CallPolicy,
        ChatMessage,
        LanguageModel,
        LanguageModelError,
        ModelComposer,
        ModelRequest,
        ModelResponse,
        ModelUnderstander,
        Price,
        model_from_name,
    )
    from parlant_runtime.model import (
        CompositionMode,
        Event,
        EventType,
        Session,
        SessionMode,
        SessionStatus,
        StateType,
        ValueType,
        Variable,
        VariableScope,
    )
    from parlant_runtime.storage import (
        AgentChanges,
        ConcurrentUpdate,
        DatabaseUnavailable,
        DatabaseURLError,
        DuplicateMessage,
        InvalidData,
        MemoryStore,
        MigrationError,
        NewEvent,
        NotFound,
        PublishRefused,
        PublishReport,
        SessionStart,
        StorageError,
        Store,
        StoredAgent,
        TurnCommit,
        VariableChange,
    )
    from parlant_runtime.storage.adopt import AdoptionRefused, AdoptionReport, adopt
    from parlant_runtime.storage.citus import LayoutRefused
    from parlant_runtime.storage.migrate import upgrade
    from parlant_runtime.storage.sql.store import SqlStore
    from parlant_runtime.storage.url import database_url
    from parlant_runtime.telemetry import Telemetry
    from parlant_runtime.testing import (
        CaseResult,
        ConversationFileError,
        CoverageReport,
        FileResult,
        ToolStubError,
        coverage_of,
        run_conversation_file,
    )
    from parlant_runtime.validation import (
        Code,
        Finding,
        Severity,
        ValidationReport,
        validate_bundle,
    )


def _version() -> str:
    from importlib import metadata  # noqa: PLC0415  # 70 ms: only when asked for

    try:
        return metadata.version("parlant-runtime")
    except metadata.PackageNotFoundError:  # imported from a source tree never installed
        return "0+unknown"


# a library never configures logging: its records go nowhere until the host adds a handler
# (docs/observability.md lists the loggers, one per layer under "parlant_runtime")
_logging.getLogger(__name__).addHandler(_logging.NullHandler())

__all__ = [
    "AdoptionRefused",
    "AdoptionReport",
    "AgentBundle",
    "AgentChanges",
    "AgentSpec",
    "BundleError",
    "BundleProblem",
    "CallPolicy",
    "Candidate",
    "CannedChooser",
    "CannedResponseSpec",
    "CaseResult",
    "ChatMessage",
    "Code",
    "CollectSpec",
    "CollectedVariableSpec",
    "ComposeRequest",
    "CompositionMode",
    "ConcurrentUpdate",
    "ConditionEvaluator",
    "ConditionTrace",
    "ConversationFileError",
    "CoverageReport",
    "DatabaseURLError",
    "DatabaseUnavailable",
    "DeterministicGenerator",
    "DuplicateMessage",
    "Event",
    "EventType",
    "FileResult",
    "Finding",
    "GuidelineSpec",
    "IntegrationHealth",
    "InvalidData",
    "JourneyDiagram",
    "JourneyGuidelineSpec",
    "JourneySpec",
    "KeywordEvaluator",
    "KeywordRetriever",
    "KnowledgeBaseLinkSpec",
    "KnowledgeError",
    "KnowledgeQuery",
    "LanguageModel",
    "LanguageModelError",
    "LayoutRefused",
    "LoadedBundle",
    "MemoryStore",
    "MigrationError",
    "ModelComposer",
    "ModelRequest",
    "ModelResponse",
    "ModelUnderstander",
    "ModelUsage",
    "NewEvent",
    "NotFound",
    "ParlantRuntimeError",
    "Part",
    "Passage",
    "Price",
    "PublishRefused",
    "PublishReport",
    "Reply",
    "ReplyChunk",
    "ReplyTrace",
    "ResponseGenerator",
    "Retriever",
    "Runtime",
    "ScriptedEvaluator",
    "Session",
    "SessionClosed",
    "SessionMode",
    "SessionStart",
    "SessionStatus",
    "Severity",
    "SqlStore",
    "StateSpec",
    "StateType",
    "StorageError",
    "Store",
    "StoredAgent",
    "Telemetry",
    "TemplateSandboxError",
    "TermSpec",
    "ToolArgumentError",
    "ToolCall",
    "ToolError",
    "ToolFailure",
    "ToolHealth",
    "ToolIntegrationSpec",
    "ToolRegistry",
    "ToolSpec",
    "ToolStubError",
    "Trace",
    "TransitionSpec",
    "TransitionTrace",
    "TurnCommit",
    "TurnContext",
    "TurnResult",
    "UnderstandRequest",
    "Understander",
    "Understanding",
    "Utterance",
    "ValidationReport",
    "ValueType",
    "Variable",
    "VariableChange",
    "VariableScope",
    "VariableSpec",
    "__version__",
    "adopt",
    "build_diagram",
    "bundle_from_data",
    "coverage_of",
    "current_call",
    "database_url",
    "dump_bundle",
    "dumps_bundle",
    "load_bundle",
    "loads_bundle",
    "model_from_name",
    "read_bundle",
    "reads_bundle",
    "run_conversation_file",
    "to_dot",
    "to_mermaid",
    "upgrade",
    "validate_bundle",
]

# every name above is imported on first use, not with the package (parlant_runtime/_lazy.py)
if TYPE_CHECKING:
    __version__: str
else:
    __getattr__, __dir__ = lazy_exports(__name__, {"__version__": _version})
