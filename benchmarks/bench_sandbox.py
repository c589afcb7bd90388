"""Sandbox bounds: how fast hostile templates are refused, and what the bounds cost.

Run: ``.venv/bin/python benchmarks/bench_sandbox.py`` (``--json`` for JSON,
``--typical-only`` to skip the hostile part, e.g. to time a build without the bounds).

(a) Typical texts, the reference: a prompt with two variables, a condition, and a
loop over 100 items with a comparison each (what an agent does every turn). Median
of single calls, in microseconds.

(b) Hostile texts of issue 13 and variations (nested repetition, a literal that
doubles, ``~``/``join``/``tojson``/``string`` of a nested value, ``==`` and ``in`` in
loops), each run the way a turn runs it (a canned response rendered, a condition
evaluated): the time until the sandbox refuses it (milliseconds, median of a few
runs) and the peak memory the attempt allocated (``tracemalloc``, in KiB). Before the
bounds counted nesting, the first one blocked the event loop for 24 s and then
raised ``MemoryError``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from parlant_runtime.errors import TemplateSandboxError
from parlant_runtime.sandbox import compile_expression, compile_template

CONTEXT: dict[str, Any] = {
    "vars": {
        "day": "Monday",
        "time": "10:00",
        "n": 5,
        "ok": True,
        "big": 100_000,
        "row": [0] * 1000,
        "items": [{"name": f"item {i}", "n": i % 3} for i in range(100)],
    },
    "message": "hello",
}

TYPICAL = {
    "prompt": ("template", "Booked for {{ vars.day }} at {{ vars.time }}."),
    "condition": ("expression", "vars.n > 3 and vars.ok is defined"),
    "loop of 100 with a comparison": (
        "template",
        "{% for x in vars.items %}{{ x.name }}{% if x.n == 1 %}!{% endif %}{% endfor %}",
    ),
}

HOSTILE = {
    "{{ [[0]*100000]*100000 }} (issue 13)": ("template", "{{ [[0] * vars.big] * vars.big }}"),
    "[[0]*1000]*1000 | length": ("expression", "([[0] * 1000] * vars.big) | length"),
    "[row]*99 | tojson": ("template", "{{ ([vars.row] * 99) | tojson }}"),
    "[row]*99 | join": ("template", "{{ ([vars.row] * 99) | join }}"),
    "[row]*99 | string": ("expression", "(([vars.row] * 99) | string | length) > 0"),
    "[row]*99 ~ ''": ("expression", "(([vars.row] * 99) ~ '') | length > 0"),
    "printing [row]*99": ("template", "{{ [vars.row] * 99 }}"),
    "doubling literal in a loop": (
        "template",
        "{% set ns = namespace(a=[0]) %}{% for i in range(40) %}"
        "{% set ns.a = [ns.a, ns.a] %}{% endfor %}{{ ns.a | length }}",
    ),
    "== of 99,999 items, 1,000 times": (
        "template",
        "{% set a = [0] * 99999 %}{% set b = [0] * 99999 %}"
        "{% for i in range(1000) %}{% if a == b %}{% endif %}{% endfor %}",
    ),
    "in on 99,999 items, 1,000 times": (
        "template",
        "{% set a = [0] * 99999 %}{% for i in range(1000) %}{% if 1 in a %}{% endif %}{% endfor %}",
    ),
    "sort | unique of 999 items, 1,000 times": (
        "template",
        "{% set a = range(999) | list %}"
        "{% for i in range(1000) %}{{ a | sort | unique | list | length }}{% endfor %}",
    ),
    "map | select of 999 items, 1,000 times": (
        "template",
        "{% set a = range(999) | list %}{% for i in range(1000) %}"
        "{{ a | map('abs') | select('odd') | list | length }}{% endfor %}",
    ),
    "wordwrap of 20,000 characters, 1,000 times": (
        "template",
        "{% set a = 'x ' * 9999 %}{% for i in range(1000) %}{{ a | wordwrap(1) | length }}"
        "{% endfor %}",
    ),
    "nesting 10,000 deep in a loop": (
        "template",
        "{% set ns = namespace(a=0) %}{% for i in range(100) %}{% for j in range(100) %}"
        "{% set ns.a = [ns.a] %}{% endfor %}{% endfor %}{{ ns.a | length }}",
    ),
}


def runner(how: str, source: str) -> Callable[[], object]:
    if how == "template":
        template = compile_template(source)
        return lambda: template.render(CONTEXT)
    expression = compile_expression(source)
    return lambda: expression.evaluate(CONTEXT)


def median_us(action: Callable[[], object], count: int) -> float:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples)


def refused(action: Callable[[], object]) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        action()
    except TemplateSandboxError as exc:
        return (time.perf_counter() - started) * 1000, str(exc)
    return (time.perf_counter() - started) * 1000, "NOT REFUSED"


def peak_kib(action: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        action()
    except TemplateSandboxError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 1024


def hostile_action(how: str, source: str) -> Callable[[], object]:
    """Compiling counts too: a constant bomb is refused by the analysis."""
    if how == "template":
        return lambda: compile_template.__wrapped__(source).render(CONTEXT)
    return lambda: compile_expression.__wrapped__(source).evaluate(CONTEXT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--typical-only", action="store_true")
    options = parser.parse_args()
    results: dict[str, Any] = {
        "machine": f"{platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f}",
        "typical_us": {name: median_us(runner(*text), 2000) for name, text in TYPICAL.items()},
        "hostile": {},
    }
    if not options.typical_only:
        for name, (how, source) in HOSTILE.items():
            action = hostile_action(how, source)
            timings = [refused(action) for _ in range(5)]
            results["hostile"][name] = {
                "refused_ms": statistics.median(t for t, _ in timings),
                "peak_kib": peak_kib(action),
                "error": timings[0][1],
            }
    if options.json:
        print(json.dumps(results, indent=2))
        return
    print(f"machine: {results['machine']}")
    print("(a) typical texts (reference), median us per call")
    for name, value in results["typical_us"].items():
        print(f"  {name:<40} {value:9.1f} us")
    if results["hostile"]:
        print("(b) hostile texts: time to refusal, peak memory of the attempt")
        for name, row in results["hostile"].items():
            print(f"  {name:<40} {row['refused_ms']:8.2f} ms {row['peak_kib']:9.0f} KiB")
            print(f"      {row['error']}")


if __name__ == "__main__":
    main()
