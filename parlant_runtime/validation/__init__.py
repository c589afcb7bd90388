"""Journey validation: one function per rule, every finding collected, with lines and paths."""

from __future__ import annotations

from parlant_runtime.validation.findings import (
    CODE_INFO,
    Code,
    CodeInfo,
    Finding,
    Severity,
    ValidationReport,
)
from parlant_runtime.validation.validator import validate_bundle

__all__ = [
    "CODE_INFO",
    "Code",
    "CodeInfo",
    "Finding",
    "Severity",
    "ValidationReport",
    "validate_bundle",
]
