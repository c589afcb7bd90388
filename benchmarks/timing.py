"""Timing of turns for the benchmarks: wall time per turn with the client's CPU time,
turns per second over concurrent sessions, and the 99th percentile.

A sibling script module, imported by ``bench_storage``, ``persisted_turn`` and ``bench_citus``.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

__all__ = ["Turn", "latency", "p99", "throughput"]

Turn = Callable[[Any, int], Awaitable[None]]
"""One turn of a benchmarked system: ``(target, number)``."""


async def latency(
    turn: Turn, target: Any, count: int, start: int, cpu: list[float] | None = None
) -> list[float]:
    """Wall time of each turn; with ``cpu``, appends this process's CPU time per turn
    (client cost: what SQLAlchemy, pydantic and the driver spend, whatever else the
    machine runs)."""
    samples = []
    cpu_began = time.process_time()
    for number in range(start, start + count):
        began = time.perf_counter()
        await turn(target, number)
        samples.append(time.perf_counter() - began)
    if cpu is not None:
        cpu.append((time.process_time() - cpu_began) / count)
    return samples


async def throughput(turn: Turn, targets: Sequence[Any], seconds: float) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(target: Any) -> None:
        nonlocal done
        number = 0
        while time.perf_counter() < stop:
            await turn(target, number)
            number += 1
            done += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(target) for target in targets))
    return done / (time.perf_counter() - began)


def p99(samples: Sequence[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]
