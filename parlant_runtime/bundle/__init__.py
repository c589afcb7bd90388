"""Agent bundles: the file format people write agents in (YAML or JSON)."""

from __future__ import annotations

from parlant_runtime.bundle.dumper import dump_bundle, dumps_bundle
from parlant_runtime.bundle.loader import (
    LoadedBundle,
    bundle_from_data,
    load_bundle,
    loads_bundle,
    read_bundle,
    reads_bundle,
)
from parlant_runtime.bundle.schema import (
    AgentBundle,
    AgentSpec,
    CannedResponseSpec,
    CollectedVariableSpec,
    GuidelineSpec,
    JourneyGuidelineSpec,
    JourneySpec,
    KnowledgeBaseLinkSpec,
    StateSpec,
    TermSpec,
    ToolIntegrationSpec,
    ToolSpec,
    TransitionSpec,
    VariableSpec,
)
from parlant_runtime.bundle.source import SourceMap

__all__ = [
    "AgentBundle",
    "AgentSpec",
    "CannedResponseSpec",
    "CollectedVariableSpec",
    "GuidelineSpec",
    "JourneyGuidelineSpec",
    "JourneySpec",
    "KnowledgeBaseLinkSpec",
    "LoadedBundle",
    "SourceMap",
    "StateSpec",
    "TermSpec",
    "ToolIntegrationSpec",
    "ToolSpec",
    "TransitionSpec",
    "VariableSpec",
    "bundle_from_data",
    "dump_bundle",
    "dumps_bundle",
    "load_bundle",
    "loads_bundle",
    "read_bundle",
    "reads_bundle",
]
