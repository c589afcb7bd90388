"""Client instructions per persisted turn on PostgreSQL, counted by valgrind: a figure
the machine's load does not move.

Run: ``.venv/bin/python benchmarks/bench_turn_instructions.py`` (``--quick`` for fewer
turns, ``--json`` for JSON). Needs ``valgrind`` (its ``callgrind`` tool and
``callgrind_control``) and a PostgreSQL server as ``bench_storage.py`` does
(``$PARLANT_BENCH_POSTGRES_URL``, else ``$PARLANT_TEST_POSTGRES_URL``, else
``postgresql://postgres@127.0.0.1:5432/postgres``); without valgrind it says so and
exits. It is not part of the test run.

On a machine shared with other work, CPU time per turn moves with the load (caches,
frequency, the other processes); the number of instructions the client executes does
not. Each system below runs in a process of its own under ``callgrind`` with counting
off; after a warm-up it switches counting on (``callgrind_control -i on``), runs its
turns one after another on one session, and switches it off. The figure is the
user-space instructions of the whole process (the interpreter, asyncpg, the event
loop) per turn; time in the kernel and the server is not counted.

- ``runtime``: ``Runtime.process_message`` on a ``SqlStore``, the strict ring agent of
  ``persisted_turn.py`` (three events and a move per turn);
- ``engine alone``: the same calls on a store that answers at once with a read and a
  commit it recorded (what the turn costs besides the store);
- ``raw asyncpg``: ``raw_turn.py``'s reference (``SELECT`` the session, three event
  ``INSERT``s, the compare-and-set ``UPDATE``, one transaction).

The ratios are runtime / raw and engine alone / raw.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SYSTEMS = ("runtime", "engine alone", "raw asyncpg")
WARM_UP = 100


def _counting(on: bool) -> None:
    subprocess.run(
        ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
        check=True,
        capture_output=True,
    )


async def _measured(turn: Callable[[int], Awaitable[object]], turns: int) -> None:
    """:data:`WARM_UP` turns, then ``turns`` turns with the instructions counted."""
    for number in range(WARM_UP):
        await turn(number)
    _counting(True)
    for number in range(turns):
        await turn(number)
    _counting(False)


async def _runtime(url: str, turns: int) -> None:
    from persisted_turn import WS, _runtime_side  # noqa: PLC0415  (the worker's own imports)

    store, runtime, new_session = await _runtime_side(url)
    try:
        session_id = await new_session()
        await _measured(lambda n: runtime.process_message(WS, session_id, f"message {n}"), turns)
    finally:
        await store.close()


class _Answering:
    """A store that answers a turn's read and commit at once with recorded answers."""

    def __init__(self, store: Any, read: Any, committed: Any) -> None:
        self._store, self._read, self._committed = store, read, committed

    async def read_turn(self, *_: Any, **__: Any) -> Any:
        return self._read

    async def record_turn(self, *_: Any) -> Any:
        return self._committed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def _engine_alone(url: str, turns: int) -> None:
    from persisted_turn import WS, _runtime_side  # noqa: PLC0415

    from parlant_runtime import Runtime  # noqa: PLC0415

    store, runtime, new_session = await _runtime_side(url)
    try:
        session_id = await new_session()
        recorded: list[Any] = []
        real = store.record_turn

        async def record(workspace_id: str, turn: Any) -> Any:
            recorded.append(await real(workspace_id, turn))
            return recorded[-1]

        store.record_turn = record  # type: ignore[method-assign]
        runtime = Runtime(store)
        for number in range(3):
            await runtime.process_message(WS, session_id, f"message {number}")
        del store.record_turn
        answering = _Answering(store, await store.read_turn(WS, session_id), recorded[-1])
        runtime = Runtime(answering)
        await _measured(lambda n: runtime.process_message(WS, session_id, f"message {n}"), turns)
    finally:
        await store.close()


async def _raw(url: str, turns: int) -> None:
    import sqlalchemy as sa  # noqa: PLC0415
    from raw_turn import PostgresRawTurn, create_postgres  # noqa: PLC0415

    dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    await create_postgres(dsn)
    raw = await PostgresRawTurn.open(dsn, 2)
    try:
        session_id = await raw.new_session()
        await _measured(lambda n: raw.turn(session_id, n), turns)
    finally:
        await raw.close()


def _worker(system: str, url: str, turns: int) -> None:
    work = {"runtime": _runtime, "engine alone": _engine_alone, "raw asyncpg": _raw}[system]
    asyncio.run(work(url, turns))


def _count(system: str, url: str, turns: int, folder: Path) -> int:
    """Instructions the worker of ``system`` executed while counting."""
    out = folder / f"callgrind.{SYSTEMS.index(system)}.out"
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        system,
        url,
        str(turns),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"bench_turn_instructions: the {system} worker failed:\n{done.stderr}")
    return int(found.group(1).replace(",", ""))


async def _counted(turns: int) -> dict[str, int]:
    from bench_storage import admin_url, throwaway_postgres  # noqa: PLC0415

    async with throwaway_postgres(admin_url()) as url:
        with tempfile.TemporaryDirectory(prefix="parlant-callgrind-") as folder:
            return {
                system: await asyncio.to_thread(_count, system, url, turns, Path(folder))
                for system in SYSTEMS
            }


def run(turns: int) -> dict[str, Any]:
    counts = asyncio.run(_counted(turns))
    per_turn = {system: count / turns for system, count in counts.items()}
    raw = per_turn["raw asyncpg"]
    return {
        "turns": turns,
        "instructions_per_turn": per_turn,
        "runtime_ratio": per_turn["runtime"] / raw,
        "engine_ratio": per_turn["engine alone"] / raw,
    }


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        sys.path.insert(0, str(HERE))
        _worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer turns")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("bench_turn_instructions: valgrind (callgrind) is not installed; nothing measured")
        return
    results = run(100 if args.quick else 400)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"client instructions per persisted turn (valgrind callgrind, {results['turns']} turns "
        "on one session, after a warm-up)"
    )
    for system, count in results["instructions_per_turn"].items():
        print(f"  {system:14} {count / 1e6:>7.2f} M")
    print(
        f"  runtime / raw {results['runtime_ratio']:.2f}x, "
        f"engine alone / raw {results['engine_ratio']:.2f}x"
    )


if __name__ == "__main__":
    main()
