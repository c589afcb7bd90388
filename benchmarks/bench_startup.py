"""Start-up: what importing the package costs, beside the interpreter and its libraries.

Run: ``.venv/bin/python benchmarks/bench_startup.py`` (``--runs N`` per command,
default 15; ``--json`` for JSON; ``--tree PATH`` to measure the package of another
checkout, e.g. a worktree of ``main``, put first on ``PYTHONPATH``, beside this one).

Each line is a fresh interpreter running one statement, timed from start to exit
(``perf_counter`` around ``subprocess.run``); the commands take turns, round after
round, so that drift in the machine hits them alike, and the figure is the median.
References, in the same run:

- ``python -c pass``: the interpreter alone (the ratio's base);
- ``from pydantic import BaseModel`` and ``import sqlalchemy``: the two libraries
  an embedding that stores sessions cannot do without.

Measured: ``import parlant_runtime`` (the aim of issue 11: at most 8x ``pass``); the
embedding API (``Runtime``, ``MemoryStore``, ``bundle_from_data``) with and without
the SQL store; validation (``validate_bundle``); the command
line's entry point (``parlant_runtime.cli``). ``--importtime`` adds the five modules
with the largest own import time for each command (``python -X importtime``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "python -c pass": "pass",
    "pydantic BaseModel": "from pydantic import BaseModel",
    "sqlalchemy": "import sqlalchemy",
    "import parlant_runtime": "import parlant_runtime",
    "embedding API": "from parlant_runtime import Runtime, MemoryStore, bundle_from_data",
    "embedding API + SqlStore": (
        "from parlant_runtime import Runtime, bundle_from_data\n"
        "from parlant_runtime.storage.sql.store import SqlStore"
    ),
    "validate_bundle": "from parlant_runtime import validate_bundle",
    "the CLI": "import parlant_runtime.cli",
}
BASE = "python -c pass"
NEUTRAL = tempfile.gettempdir()
"""The commands' working directory: ``-c`` puts it first on ``sys.path``, and a
checkout there would shadow the package measured."""
AIM = 8.0


def environment(tree: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    return env


def time_once(code: str, env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=NEUTRAL)
    return time.perf_counter() - began


def largest_own_times(code: str, env: dict[str, str], count: int = 5) -> list[tuple[str, int]]:
    """The modules with the largest own import time (microseconds) for ``code``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        check=True,
        env=env,
        cwd=NEUTRAL,
        capture_output=True,
        text=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[0].strip().isdigit():
            rows.append((parts[2].strip(), int(parts[0])))
    return sorted(rows, key=lambda row: -row[1])[:count]


def measure(runs: int, trees: dict[str, Path | None]) -> dict[str, dict[str, float]]:
    envs = {label: environment(tree) for label, tree in trees.items()}
    jobs = [(label, name) for label in trees for name in COMMANDS]
    for label, name in jobs:  # warm the file cache and the bytecode
        time_once(COMMANDS[name], envs[label])
    samples: dict[tuple[str, str], list[float]] = {job: [] for job in jobs}
    for _ in range(runs):
        for label, name in jobs:
            samples[(label, name)].append(time_once(COMMANDS[name], envs[label]))
    return {
        label: {name: statistics.median(samples[(label, name)]) for name in COMMANDS}
        for label in trees
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per command (median shown)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--tree", type=Path, help="also measure the package of this checkout")
    parser.add_argument("--importtime", action="store_true", help="the largest imports too")
    args = parser.parse_args()
    trees: dict[str, Path | None] = {"this": None}
    if args.tree is not None:
        trees[str(args.tree)] = args.tree.resolve()
    found = measure(args.runs, trees)
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
        f"CPython {platform.python_version()}; median of {args.runs} runs"
    )
    if args.json:
        print(json.dumps({"machine": machine, "seconds": found}, indent=2))
        return
    print(f"start-up: a fresh interpreter per statement ({machine})")
    for label, figures in found.items():
        base = figures[BASE]
        print(f"\n{'package of ' + label if len(found) > 1 else ''}")
        print(f"  {'statement':<26} {'ms':>7} {'x pass':>7}")
        for name, seconds in figures.items():
            print(f"  {name:<26} {seconds * 1e3:>7.1f} {seconds / base:>6.1f}x")
        ratio = figures["import parlant_runtime"] / base
        verdict = "met" if ratio <= AIM else "missed"
        print(f"  aim: import parlant_runtime <= {AIM:.0f}x pass: {ratio:.1f}x, {verdict}")
        if args.importtime:
            env = environment(trees[label])
            for name in list(COMMANDS)[3:]:
                top = ", ".join(
                    f"{module} {us / 1e3:.0f}"
                    for module, us in largest_own_times(COMMANDS[name], env)
                )
                print(f"  {name}: largest own import times, ms: {top}")


if __name__ == "__main__":
    main()
