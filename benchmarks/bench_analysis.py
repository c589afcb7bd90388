"""The fast path of static analysis (``sandbox/_quick.py``) against Jinja alone.

Run: ``.venv/bin/python benchmarks/bench_analysis.py`` (``--json`` for JSON).

Static analysis (:func:`parlant_runtime.sandbox.analyse`) reads a template or an
expression condition without running it. Simple texts take a fast path of their own
(a small tokenizer and parser for dotted names, literals, comparisons and
``and``/``or``/``not``, with analyses shared by texts of one shape); everything else,
and the reference here, is Jinja's lexer and parser and one walk of the tree.

Measured in the same run, with every analysis cache cleared before each run:

- per corpus, every distinct text analysed once: with the fast path (what the
  library does) and through Jinja alone, remembered per text (the simple path: what
  :func:`analyse` would be without the fast path);
- ``validate_bundle`` of a journey of 1,000 and of 5,000 states
  (``bench_validation.py``'s journeys) with the fast path, and with it switched off.

The corpora: every template and expression condition of the example agents
(``examples/*.yaml``: hand-written texts), and those of the 5,000-state journey
(texts that differ by their numbers, as generated or templated agents' do). Medians
of several runs.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from parlant_runtime import AgentBundle, bundle_from_data, load_bundle, validate_bundle
from parlant_runtime.sandbox import (
    ConditionKind,
    _quick,
    analysis,
    clear_caches,
    condition_kind,
    expression_source,
    has_template_syntax,
)
from parlant_runtime.validation.context import BundleContext, SiteKind

sys.path.insert(0, str(Path(__file__).parent))
from bench_validation import journey_data

EXAMPLES = Path(__file__).parent.parent / "examples"
LARGEST = 5_000
"""States of the largest journey (a bundle holds at most 250,000 nodes: 10,000 of these
states are more)."""

Text = tuple[str, bool]
"""A text and whether it is an expression (else a template)."""


def texts_of(bundle: AgentBundle) -> list[Text]:
    """Every distinct text of the bundle that analysis parses."""
    found: dict[Text, None] = {}
    for site in BundleContext(bundle).sites:
        if site.kind is SiteKind.CONDITION:
            if condition_kind(site.text) is ConditionKind.EXPRESSION:
                found[(expression_source(site.text), True)] = None
        elif has_template_syntax(site.text):
            found[(site.text, False)] = None
    return list(found)


def with_fast_path(texts: list[Text]) -> None:
    for text, expression in texts:
        analysis.analyse(text, expression=expression)


def jinja_only(texts: list[Text]) -> None:
    known: dict[Text, analysis.Analysis] = {}
    for text, expression in texts:
        if (text, expression) not in known:
            known[(text, expression)] = analysis._analyse_with_jinja(text, expression=expression)


@contextmanager
def fast_path_off() -> Iterator[None]:
    """``analyse`` with its fast path switched off (every text goes through Jinja)."""

    def no_shape(text: str, *, expression: bool) -> tuple[str, ...] | None:
        return None

    kept = _quick.shape_of
    analysis.shape_of = no_shape  # type: ignore[attr-defined]  # its import of _quick's
    try:
        yield
    finally:
        analysis.shape_of = kept  # type: ignore[attr-defined]


def median_ms(action: Callable[[], object], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        clear_caches()
        began = time.perf_counter()
        action()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples) * 1e3


def taken(texts: list[Text]) -> int:
    """How many of the texts the fast path answers (the rest go to Jinja)."""
    count = 0
    for text, expression in texts:
        shape = _quick.shape_of(text, expression=expression)
        count += shape is not None and analysis._analyse_shape(shape) is not None
    return count


def measure(repeats: int) -> dict[str, Any]:
    corpora = {
        "examples": [
            t for path in sorted(EXAMPLES.glob("*.yaml")) for t in texts_of(load_bundle(path))
        ],
        f"{LARGEST:,}-state journey": texts_of(bundle_from_data(journey_data(LARGEST))),
    }
    results: dict[str, Any] = {"corpora": {}, "validate": {}}
    for name, texts in corpora.items():
        fast = median_ms(functools.partial(with_fast_path, texts), repeats)
        slow = median_ms(functools.partial(jinja_only, texts), repeats)
        results["corpora"][name] = {
            "texts": len(texts),
            "fast_path_takes": taken(texts),
            "fast_ms": fast,
            "jinja_ms": slow,
        }
    for size in (1_000, LARGEST):
        bundle = bundle_from_data(journey_data(size))
        check = functools.partial(validate_bundle, bundle)
        fast = median_ms(check, max(3, repeats // 3))
        with fast_path_off():
            slow = median_ms(check, max(3, repeats // 3))
        results["validate"][f"{size:,} states"] = {"fast_ms": fast, "jinja_ms": slow}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    results = measure(args.repeats)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    results["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} cores (load {load} at the end), "
        f"{platform.python_implementation()} {platform.python_version()}"
    )
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"static analysis: fast path against Jinja alone ({results['machine']})")
    print(f"{'':34} {'texts':>6} {'fast path':>10} {'fast ms':>9} {'Jinja ms':>9} {'ratio':>6}")
    for name, row in results["corpora"].items():
        print(
            f"{'analyse, ' + name:34} {row['texts']:>6} {row['fast_path_takes']:>10} "
            f"{row['fast_ms']:>9.1f} {row['jinja_ms']:>9.1f} "
            f"{row['jinja_ms'] / row['fast_ms']:>5.1f}x"
        )
    for name, row in results["validate"].items():
        print(
            f"{'validate_bundle, ' + name:34} {'':>6} {'':>10} {row['fast_ms']:>9.1f} "
            f"{row['jinja_ms']:>9.1f} {row['jinja_ms'] / row['fast_ms']:>5.1f}x"
        )


if __name__ == "__main__":
    main()
