"""Conversation tests: scripted dialogues run against a bundle, with no LLM and no network.

The contract is ``docs/testing.md``. A test file (YAML, by
convention ``*.conversation.yaml``) names a bundle and lists cases; each case is
run on a fresh in-memory store, natural-language conditions are false unless a
step's ``holds`` lists them, and tools answer from the case's stubs. The same
files run three ways: ``parlant-runtime test PATH...``, under pytest (the plugin
:mod:`parlant_runtime.testing.pytest_plugin` collects ``*.conversation.yaml``
files, one item per case), and from Python::

    result = asyncio.run(run_conversation_file("tests/clinic.conversation.yaml"))
    assert result.passed, render_text([result])

Coverage (:mod:`~parlant_runtime.testing.coverage`) reads what the cases reached
from their traces; :mod:`~parlant_runtime.testing.generate` writes cases that
take every transition of a bundle's journeys. This package does not import
pytest; only the plugin module does.
"""

from __future__ import annotations

from parlant_runtime.testing.coverage import (
    COVERAGE_FORMAT,
    CoverageReport,
    coverage_of,
    coverage_to_json,
    render_coverage_text,
)
from parlant_runtime.testing.generate import GeneratedTests, generate_tests, render_generated
from parlant_runtime.testing.loader import (
    ConversationFile,
    ConversationFileError,
    loads_conversation_file,
    read_conversation_file,
    resolve_bundle,
)
from parlant_runtime.testing.report import (
    exit_status,
    failure_headline,
    failure_text,
    render_text,
    to_json_data,
    to_junit,
)
from parlant_runtime.testing.results import (
    CaseFailure,
    CaseResult,
    FileResult,
    Mismatch,
    Outcome,
    StepRecord,
)
from parlant_runtime.testing.runner import (
    ToolStubError,
    load_case_bundle,
    run_case,
    run_conversation_file,
    stub_registry,
)
from parlant_runtime.testing.schema import (
    CONVERSATION_FILE_SUFFIX,
    CallResult,
    Case,
    ConversationSpec,
    Expect,
    Step,
    ToolCallExpect,
    ToolStub,
)

__all__ = [
    "CONVERSATION_FILE_SUFFIX",
    "COVERAGE_FORMAT",
    "CallResult",
    "Case",
    "CaseFailure",
    "CaseResult",
    "ConversationFile",
    "ConversationFileError",
    "ConversationSpec",
    "CoverageReport",
    "Expect",
    "FileResult",
    "GeneratedTests",
    "Mismatch",
    "Outcome",
    "Step",
    "StepRecord",
    "ToolCallExpect",
    "ToolStub",
    "ToolStubError",
    "coverage_of",
    "coverage_to_json",
    "exit_status",
    "failure_headline",
    "failure_text",
    "generate_tests",
    "load_case_bundle",
    "loads_conversation_file",
    "read_conversation_file",
    "render_coverage_text",
    "render_generated",
    "render_text",
    "resolve_bundle",
    "run_case",
    "run_conversation_file",
    "stub_registry",
    "to_json_data",
    "to_junit",
]
