"""Building models from stored rows: the slot writes of ``Trusted`` and ``_detached``
beside pydantic's own ways.

Run: ``.venv/bin/python benchmarks/bench_trusted.py`` (``--count N`` models per
block, ``--json`` for JSON).

``storage/sql/trusted.py`` (an agent load builds each row's model) and
``storage/memory.py``'s ``_detached`` (the memory store hands out copies) set a
model's four instance slots directly instead of calling pydantic. This measures
whether that still pays, on a journey state (``StateSpec``), in CPU time per model,
the ways taking turns block after block (median of the blocks):

- building: the slot writes ``Trusted`` ends with, beside ``model_construct`` with
  the same values and set fields (the plain way that also skips validation), and the
  whole ``Trusted`` call (conversions, defaults and checks included) for scale;
- copying: ``_detached``, beside ``model_copy(deep=True)``.

Both pairs give equal models with equal set fields (checked before timing).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from parlant_runtime.bundle.schema import StateSpec
from parlant_runtime.storage.memory import _detached
from parlant_runtime.storage.sql.trusted import (
    Trusted,
    _new,
    _set_dict,
    _set_extra,
    _set_fields_set,
    _set_private,
)

ROW = {"name": "s1", "state_type": "chat", "chat_prompt": "Hi {{ vars.name }}", "is_initial": True}


def measure(count: int, blocks: int) -> dict[str, float]:
    build = Trusted(StateSpec, "parlant_journey_state")
    model = build(dict(ROW))
    values, fields_set = dict(model.__dict__), set(model.model_fields_set)

    def slots() -> StateSpec:
        instance = _new(StateSpec)
        _set_dict(instance, dict(values))
        _set_fields_set(instance, set(fields_set))
        _set_extra(instance, None)
        _set_private(instance, None)
        return instance

    def construct() -> StateSpec:
        return StateSpec.model_construct(set(fields_set), **values)

    ways: dict[str, Callable[[], StateSpec]] = {
        "slot writes (Trusted)": slots,
        "model_construct": construct,
        "whole Trusted call": lambda: build(dict(ROW)),
        "_detached": lambda: _detached(model),
        "model_copy(deep=True)": lambda: model.model_copy(deep=True),
    }
    for way in ways.values():
        made = way()
        assert made == model
        assert made.model_fields_set == model.model_fields_set
    samples: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(blocks):
        for name, way in ways.items():
            began = time.process_time()
            for _ in range(count):
                way()
            samples[name].append((time.process_time() - began) / count)
    return {name: statistics.median(found) * 1e6 for name, found in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--count", type=int, default=20_000, help="models per block")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    found = measure(args.count, blocks=7)
    if args.json:
        print(json.dumps({"us_per_model": found}, indent=2))
        return
    print("a StateSpec from stored values, CPU us per model (median of 7 blocks)")
    for name, micros in found.items():
        print(f"  {name:<24} {micros:7.2f}")
    print(
        f"  slot writes: {found['model_construct'] / found['slot writes (Trusted)']:.1f}x "
        f"faster than model_construct; _detached: "
        f"{found['model_copy(deep=True)'] / found['_detached']:.1f}x faster than model_copy"
    )


if __name__ == "__main__":
    main()
