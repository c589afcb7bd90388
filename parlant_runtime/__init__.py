"""parlant-runtime: run Parlant-style conversational agents from data.

Everything a user needs is importable from here; submodules are internal and may
change. The surface, by concern:

- bundles: :func:`load_bundle`, :func:`dump_bundle`, :class:`AgentBundle` and its parts;
- validation: :func:`validate_bundle`, :class:`ValidationReport`, :class:`Finding`, :class:`Code`;
- diagrams: :func:`build_diagram`, :func:`to_mermaid`, :func:`to_dot`;
- the stored records (:class:`Session`, :class:`Event`, :class:`Variable`) and the enums;
- the runtime: :class:`Runtime` and its plugins (condition evaluators, generators, tools,
  knowledge-base retrievers), tool health; language models in :mod:`parlant_runtime.llm`;
- storage: the :class:`Store` port, :class:`MemoryStore`, the turn commit types;
- errors: :class:`ParlantRuntimeError` and its subclasses.
"""

from __future__ import annotations

import logging as _logging
from importlib import metadata as _metadata

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
    SourceMap,
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
)
from parlant_runtime.diagram import JourneyDiagram, build_diagram, to_dot, to_mermaid
from parlant_runtime.engine import (
    ConditionEvaluator,
    DeterministicGenerator,
    IntegrationHealth,
    KeywordEvaluator,
    KeywordRetriever,
    KnowledgeError,
    KnowledgeQuery,
    Passage,
    ReplyChunk,
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
    TurnResult,
    Understander,
    current_call,
)
from parlant_runtime.errors import (
    BundleError,
    BundleProblem,
    ParlantRuntimeError,
    TemplateSandboxError,
)
from parlant_runtime.model import (
    NIL_ID,
    AgentStatus,
    CompositionMode,
    Event,
    EventType,
    IntegrationType,
    Session,
    SessionMode,
    SessionStatus,
    StateType,
    ToolType,
    ValueType,
    Variable,
    VariableScope,
    value_fits_type,
)
from parlant_runtime.storage import (
    ConcurrentUpdate,
    DuplicateMessage,
    InvalidData,
    MemoryStore,
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
from parlant_runtime.validation import (
    CODE_INFO,
    Code,
    CodeInfo,
    Finding,
    Severity,
    ValidationReport,
    validate_bundle,
)

try:
    __version__ = _metadata.version("parlant-runtime")
except _metadata.PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

# a library never configures logging: its records go nowhere until the host adds a handler
# (docs/observability.md lists the loggers, one per layer under "parlant_runtime")
_logging.getLogger(__name__).addHandler(_logging.NullHandler())

__all__ = [
    "CODE_INFO",
    "NIL_ID",
    "AgentBundle",
    "AgentSpec",
    "AgentStatus",
    "BundleError",
    "BundleProblem",
    "CannedResponseSpec",
    "Code",
    "CodeInfo",
    "CollectedVariableSpec",
    "CompositionMode",
    "ConcurrentUpdate",
    "ConditionEvaluator",
    "DeterministicGenerator",
    "DuplicateMessage",
    "Event",
    "EventType",
    "Finding",
    "GuidelineSpec",
    "IntegrationHealth",
    "IntegrationType",
    "InvalidData",
    "JourneyDiagram",
    "JourneyGuidelineSpec",
    "JourneySpec",
    "KeywordEvaluator",
    "KeywordRetriever",
    "KnowledgeBaseLinkSpec",
    "KnowledgeError",
    "KnowledgeQuery",
    "LoadedBundle",
    "MemoryStore",
    "NewEvent",
    "NotFound",
    "ParlantRuntimeError",
    "Passage",
    "PublishRefused",
    "PublishReport",
    "ReplyChunk",
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
    "SourceMap",
    "StateSpec",
    "StateType",
    "StorageError",
    "Store",
    "StoredAgent",
    "TemplateSandboxError",
    "TermSpec",
    "ToolCall",
    "ToolError",
    "ToolFailure",
    "ToolHealth",
    "ToolIntegrationSpec",
    "ToolRegistry",
    "ToolSpec",
    "ToolType",
    "Trace",
    "TransitionSpec",
    "TurnCommit",
    "TurnResult",
    "Understander",
    "ValidationReport",
    "ValueType",
    "Variable",
    "VariableChange",
    "VariableScope",
    "VariableSpec",
    "__version__",
    "build_diagram",
    "bundle_from_data",
    "current_call",
    "dump_bundle",
    "dumps_bundle",
    "load_bundle",
    "loads_bundle",
    "read_bundle",
    "to_dot",
    "to_mermaid",
    "validate_bundle",
    "value_fits_type",
]
