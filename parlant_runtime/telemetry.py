"""OpenTelemetry spans and metrics, when the optional ``otel`` extra is installed.

The runtime reports through the OpenTelemetry *API* only (``pip install
'parlant-runtime[otel]'``): a host that already configured an SDK and an exporter
(OTLP, say) sees the runtime's spans under its own, and without the package every
call here is a no-op and nothing is imported. By default the global tracer and meter
providers are used, read at each call (a host may configure them after the runtime
is built); :class:`Telemetry` takes others (tests, a host that keeps its own).

What is reported (``docs/observability.md``): a ``parlant.turn`` span per turn, with
children for store calls (``parlant.store.<method>``), tool calls (``parlant.tool``)
and language-model calls (``parlant.model``); the metrics in :data:`METRICS`.
Attributes carry names, ids and counts, never a message, a variable value, a tool's
arguments or result, or an exception's message (which may quote any of them).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Protocol

try:  # the optional extra: everything below works without it
    from opentelemetry import metrics as _metrics
    from opentelemetry import trace as _trace
    from opentelemetry.trace import ProxyTracerProvider, Status, StatusCode

    AVAILABLE = True
except ImportError:  # pragma: no cover - exercised in a subprocess test
    AVAILABLE = False

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["AVAILABLE", "METRICS", "Attributes", "SpanLike", "Telemetry", "current", "using"]

_SCOPE = "parlant_runtime"

Attributes = Mapping[str, str | bool | int | float]
"""Span and metric attributes: names, ids and counts only."""

METRICS = {
    "parlant.turn.duration": "s: a turn, from the call to the committed result",
    "parlant.tool.calls": "tool calls, by tool and outcome (attributes tool, ok)",
    "parlant.tool.duration": "s: a tool call, retries included",
    "parlant.model.tokens": "tokens a language model reported, by model and type",
    "parlant.store.duration": "s: a store call, by method",
}
"""The metrics the runtime records, by name: unit and meaning."""


class SpanLike(Protocol):
    """What the call sites use of a span (an OpenTelemetry span, or the no-op one)."""

    def set_attribute(self, key: str, value: str | bool | int | float) -> None:
        """Add an attribute (names, ids and counts only)."""

    def is_recording(self) -> bool:
        """Whether attributes are kept (skip computing them when not)."""


class _NoSpan:
    def set_attribute(self, key: str, value: str | bool | int | float) -> None:
        return None

    def is_recording(self) -> bool:
        return False


_NO_SPAN = _NoSpan()


class Telemetry:
    """Where the runtime's spans and metrics go (see the module docstring).

    ``Telemetry()`` reports to the global providers when OpenTelemetry is installed;
    ``Telemetry(enabled=False)`` reports nothing, exactly as when it is not installed.
    """

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        enabled: bool = True,
    ) -> None:
        """Args:
        tracer_provider: where spans go (default: the global tracer provider).
        meter_provider: where metrics go (default: the global meter provider).
        enabled: ``False`` reports nothing (the store is not even wrapped).
        """
        self.on = enabled and AVAILABLE
        """Whether anything is reported (OpenTelemetry installed and not disabled)."""
        if not self.on:
            return
        self._global = tracer_provider is None
        # the API's get_tracer/get_meter with no provider return proxies that follow the
        # global provider, also when the host sets it after this runtime was built
        self._tracer = _trace.get_tracer(_SCOPE, tracer_provider=tracer_provider)
        meter = _metrics.get_meter(_SCOPE, meter_provider=meter_provider)
        self.turn_duration = meter.create_histogram(
            "parlant.turn.duration", unit="s", description=METRICS["parlant.turn.duration"]
        )
        self.tool_calls = meter.create_counter(
            "parlant.tool.calls", unit="{call}", description=METRICS["parlant.tool.calls"]
        )
        self.tool_duration = meter.create_histogram(
            "parlant.tool.duration", unit="s", description=METRICS["parlant.tool.duration"]
        )
        self.model_tokens = meter.create_counter(
            "parlant.model.tokens", unit="{token}", description=METRICS["parlant.model.tokens"]
        )
        self.store_duration = meter.create_histogram(
            "parlant.store.duration", unit="s", description=METRICS["parlant.store.duration"]
        )

    @contextmanager
    def span(self, name: str, attributes: Attributes) -> Iterator[SpanLike]:
        """A span, current while the block runs (a child of the current one).

        An exception marks it failed with the exception's type only: its message may
        quote a value the runtime keeps private.
        """
        if not self.on or (self._global and _no_global_provider()):
            yield _NO_SPAN
            return
        with self._tracer.start_as_current_span(
            name, attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                yield span
            except BaseException as exc:
                span.set_attribute("error.type", type(exc).__qualname__)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise


def _no_global_provider() -> bool:
    """Whether no host has set a global tracer provider yet: the API would make a no-op
    span, at about 7 us each (benchmarks/bench_telemetry.py); none is made instead."""
    return isinstance(_trace.get_tracer_provider(), ProxyTracerProvider)


_OFF = Telemetry(enabled=False)
_DEFAULT: Telemetry | None = None
_CURRENT: ContextVar[Telemetry | None] = ContextVar("parlant_runtime_telemetry", default=None)


def current() -> Telemetry:
    """The telemetry of the runtime call running in this context, or the default one
    (the global providers) for a tool or model called outside a runtime."""
    found = _CURRENT.get()
    if found is not None:
        return found
    global _DEFAULT  # noqa: PLW0603 - one default per process, made on first use
    if _DEFAULT is None:
        _DEFAULT = Telemetry() if AVAILABLE else _OFF
    return _DEFAULT


@contextmanager
def using(telemetry: Telemetry) -> Iterator[Telemetry]:
    """Make ``telemetry`` :func:`current` while the block runs (tasks it starts inherit it)."""
    token = _CURRENT.set(telemetry)
    try:
        yield telemetry
    finally:
        _CURRENT.reset(token)
