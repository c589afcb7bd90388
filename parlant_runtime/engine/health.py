"""How well a tool's calls go: use count, error counts, success rate and health.

Turns write counters only (insert-only usage deltas, see
:func:`parlant_runtime.engine.tools.usage_deltas`): the tool's ``use_count`` (calls
whose function ran) and each integration's ``error_count`` (calls routed to it that
failed, after their retries; a fallback result counts as a failure). Everything else
is derived on read, from the store's usage counters, the same way on every store:

- ``error_count`` of the tool: the sum of its integrations' error counts;
- ``success_rate``: ``100 * (use_count - error_count) // use_count``, a whole
  percentage rounded down, and 100 before the first call (the schema's default);
- ``health`` of the tool and of each integration, from the share of the tool's calls
  that did not fail there: ``unknown`` before the first call, ``healthy`` at
  :data:`HEALTHY` % or more, ``degraded`` at :data:`DEGRADED` % or more, else
  ``failing``; a disabled integration is ``disabled``.

A tool without an enabled integration counts its calls but no failures (there is no
counter to put them in); give it an integration (``custom_tool``) to follow them.

The SQL stores also write the result into their columns when they roll usage up
(``parlant_tool.success_rate``, ``parlant_tool_integration.health_status`` and
``last_health_check``), by the same rule, for whoever reads the tables directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from parlant_runtime.bundle.schema import ToolSpec
from parlant_runtime.engine.usage import Entity
from parlant_runtime.storage.checks import TOOL_DEGRADED, TOOL_HEALTHY
from parlant_runtime.storage.port import Store

__all__ = [
    "DEGRADED",
    "HEALTHY",
    "IntegrationHealth",
    "ToolHealth",
    "health_of",
    "success_rate",
    "tool_health",
]

HEALTHY = TOOL_HEALTHY
"""Least success rate (percent) of a healthy tool or integration (95)."""

DEGRADED = TOOL_DEGRADED
"""Least success rate (percent) of a degraded one (50); below it, ``failing``."""


@dataclass(frozen=True, slots=True)
class IntegrationHealth:
    """One integration of a tool: its failures and health."""

    id: UUID
    integration_type: str
    target_id: str
    enabled: bool
    error_count: int
    health: str


@dataclass(frozen=True, slots=True)
class ToolHealth:
    """A tool's counters and what derives from them (see the module docstring)."""

    tool: str
    tool_id: UUID
    use_count: int
    error_count: int
    success_rate: int
    health: str
    integrations: tuple[IntegrationHealth, ...]


def success_rate(use_count: int, error_count: int) -> int:
    """Whole percent of calls that did not fail (100 before the first call)."""
    if use_count <= 0:
        return 100
    return 100 * max(use_count - error_count, 0) // use_count


def health_of(use_count: int, error_count: int) -> str:
    """``unknown``, ``healthy``, ``degraded`` or ``failing`` (see the module docstring)."""
    if use_count <= 0:
        return "unknown"
    rate = success_rate(use_count, error_count)
    if rate >= HEALTHY:
        return "healthy"
    return "degraded" if rate >= DEGRADED else "failing"


async def tool_health(store: Store, workspace_id: str, tool: ToolSpec) -> ToolHealth:
    """The tool's health from the store's usage counters (pending deltas included).

    Raises:
        NotFound: the tool (or one of its integrations) is not in the workspace.
    """
    uses = (await store.usage(workspace_id, Entity.TOOL, tool.id)).get("use_count", 0)
    integrations = []
    for integration in tool.integrations:
        counters = await store.usage(workspace_id, Entity.TOOL_INTEGRATION, integration.id)
        errors = counters.get("error_count", 0)
        integrations.append(
            IntegrationHealth(
                id=integration.id,
                integration_type=integration.integration_type.value,
                target_id=integration.target_id,
                enabled=integration.enabled,
                error_count=errors,
                health=health_of(uses, errors) if integration.enabled else "disabled",
            )
        )
    errors = sum(i.error_count for i in integrations)
    return ToolHealth(
        tool=tool.name,
        tool_id=tool.id,
        use_count=uses,
        error_count=errors,
        success_rate=success_rate(uses, errors),
        health=health_of(uses, errors),
        integrations=tuple(integrations),
    )
