"""Running every rule over a bundle and collecting every finding."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from parlant_runtime.bundle.loader import LoadedBundle
from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.bundle.source import SourceMap

# the rule modules register themselves on import
from parlant_runtime.validation import content, paths, semantics, structure, tools, transitions
from parlant_runtime.validation.context import BundleContext
from parlant_runtime.validation.findings import Finding, ValidationReport
from parlant_runtime.validation.registry import BUNDLE_RULES, JOURNEY_RULES

__all__ = ["validate_bundle"]

_RULE_MODULES = (content, paths, semantics, structure, tools, transitions)


def validate_bundle(
    bundle: AgentBundle | LoadedBundle, *, source: SourceMap | None = None
) -> ValidationReport:
    """Validate every journey of a bundle and the agent around them.

    Args:
        bundle: the bundle, or a :class:`LoadedBundle` whose line numbers findings use.
        source: line numbers for a bare bundle, if it came from a file.

    Returns:
        Every finding of every rule (never only the first), in file order.
    """
    if isinstance(bundle, LoadedBundle):
        source = source or bundle.source
        bundle = bundle.bundle
    with _no_cycle_collection():
        return _validate(BundleContext(bundle, source))


def _validate(context: BundleContext) -> ValidationReport:
    try:
        findings: list[Finding] = []
        for _, bundle_check in BUNDLE_RULES:
            findings.extend(bundle_check(context))
        for journey_context in context.journeys:
            for _, journey_check in JOURNEY_RULES:
                findings.extend(journey_check(journey_context))
        return ValidationReport.of(findings)
    finally:
        # the journeys point back at the context: without them, reference counting
        # frees everything as this returns, before the collector is back on
        context.release()


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Python's cycle collector paused while the rules run, as it was before afterwards.

    Validating allocates an object or more per state, transition and template (sites,
    analyses, findings) and keeps most of them until it returns: the collector
    scanned them again and again for nothing, a quarter of the time on a journey of
    10,000 states (benchmarks/bench_validation.py). Reference counting still frees
    everything as usual, and the validation leaves no cycle behind (see ``_validate``),
    so that the collector does not meet those objects when it is back on either.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
