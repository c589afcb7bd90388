"""A store that reports each call as a span and a duration (:mod:`parlant_runtime.telemetry`).

:func:`traced_store` wraps any :class:`~parlant_runtime.storage.port.Store` in a
delegating proxy instead of instrumenting each adapter: the calls of the storage
port become ``parlant.store.<method>`` spans (attributes: the method and the
workspace) and ``parlant.store.duration`` measurements; everything else (an
adapter's own methods and attributes) passes through untouched.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, cast

from parlant_runtime.storage.port import Store
from parlant_runtime.telemetry import Telemetry

__all__ = ["traced_store"]

_CALLS = frozenset(
    name
    for name in vars(Store)
    if not name.startswith("_") and callable(getattr(Store, name)) and name != "close"
)
"""The port's methods that are reported (``close`` is not a call of any turn)."""


def traced_store(store: Store, telemetry: Telemetry) -> Store:
    """``store``, reporting its calls to ``telemetry``; ``store`` itself when telemetry is off."""
    if not telemetry.on or isinstance(store, _TracedStore):
        return store
    return cast(Store, _TracedStore(store, telemetry))


class _TracedStore:
    """Delegates every attribute to the wrapped store; the port's calls are traced."""

    def __init__(self, store: Store, telemetry: Telemetry) -> None:
        self.wrapped = store
        self._telemetry = telemetry

    def __repr__(self) -> str:
        return f"traced({self.wrapped!r})"

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.wrapped, name)
        if name not in _CALLS:
            return found
        traced = self._trace(name, found)
        setattr(self, name, traced)  # wrapped once per method, not per call
        return traced

    def _trace(
        self, name: str, method: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        telemetry, span_name = self._telemetry, f"parlant.store.{name}"
        measured = {"parlant.store.method": name}

        @wraps(method)
        async def call(*args: Any, **kwargs: Any) -> Any:
            workspace = args[0] if args and isinstance(args[0], str) else None
            attributes = {**measured, "parlant.workspace": workspace} if workspace else measured
            started = time.perf_counter()
            try:
                with telemetry.span(span_name, attributes):
                    return await method(*args, **kwargs)
            finally:
                telemetry.store_duration.record(time.perf_counter() - started, measured)

        return call
