"""Journey validation: one function per rule, every finding collected, with lines and paths."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parlant_runtime._lazy import lazy_exports

if TYPE_CHECKING:
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

if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__)
