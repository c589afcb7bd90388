"""The list of rules: one function per rule, each declaring the code it reports.

A journey rule looks at one journey graph; a bundle rule looks at the agent as a
whole (tools, guidelines, canned responses, and texts across journeys). The
validator runs every registered rule and keeps every finding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from parlant_runtime.validation.context import BundleContext, JourneyContext
from parlant_runtime.validation.findings import Code, Finding

__all__ = ["BUNDLE_RULES", "JOURNEY_RULES", "Rule", "bundle_rule", "journey_rule"]

JourneyCheck = Callable[[JourneyContext], Iterator[Finding]]
BundleCheck = Callable[[BundleContext], Iterator[Finding]]


@dataclass(frozen=True, slots=True)
class Rule:
    """A registered rule: its code, its function, and whether it runs per journey."""

    code: Code
    name: str
    per_journey: bool


JOURNEY_RULES: list[tuple[Rule, JourneyCheck]] = []
BUNDLE_RULES: list[tuple[Rule, BundleCheck]] = []


def journey_rule(code: Code) -> Callable[[JourneyCheck], JourneyCheck]:
    """Register a function that checks one journey and reports ``code``."""

    def register(check: JourneyCheck) -> JourneyCheck:
        JOURNEY_RULES.append((Rule(code, check.__name__, per_journey=True), check))
        return check

    return register


def bundle_rule(code: Code) -> Callable[[BundleCheck], BundleCheck]:
    """Register a function that checks the whole bundle and reports ``code``."""

    def register(check: BundleCheck) -> BundleCheck:
        BUNDLE_RULES.append((Rule(code, check.__name__, per_journey=False), check))
        return check

    return register
