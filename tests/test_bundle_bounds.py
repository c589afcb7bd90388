"""Hostile bundle text is refused before the work: depth, aliases, node count, size.

Each test asserts the library error (with a line where there is one) and a bound on
the work done: the YAML nodes built and the memory allocated while refusing, never a
wall-clock time.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from parlant_runtime import BundleError, bundle_from_data, load_bundle
from parlant_runtime.bundle import reads_bundle
from parlant_runtime.bundle.source import MAX_BUNDLE_DEPTH, MAX_BUNDLE_NODES
from parlant_runtime.cli import cli


@pytest.fixture
def nodes_built(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Counts the YAML nodes built (scalars, sequences, mappings) while a test runs."""
    count = 0
    for kind in (yaml.ScalarNode, yaml.SequenceNode, yaml.MappingNode):
        original = kind.__init__

        def counting(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> None:
            nonlocal count
            count += 1
            _original(self, *args, **kwargs)

        monkeypatch.setattr(kind, "__init__", counting)
    return lambda: count


def refused(text: str, fmt: str = "yaml") -> tuple[BundleError, int]:
    """The error loading ``text`` raises and the peak memory (bytes) allocated meanwhile."""
    tracemalloc.start()
    try:
        with pytest.raises(BundleError) as caught:
            reads_bundle(text, fmt=fmt, filename="hostile." + fmt)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return caught.value, peak


MIB = 1024 * 1024


def test_deep_yaml_flow_nesting_is_a_bundle_error_with_its_line(
    nodes_built: Callable[[], int],
) -> None:
    text = "agent: {name: A}\nsettings:\n  x: " + "[" * 5000 + "]" * 5000 + "\n"
    error, _ = refused(text)
    (problem,) = error.problems
    assert problem.line == 3
    assert f"nested deeper than {MAX_BUNDLE_DEPTH} levels" in problem.message
    assert nodes_built() <= MAX_BUNDLE_DEPTH + 5


def test_deep_yaml_block_nesting_is_a_bundle_error() -> None:
    text = "".join(" " * level + f"k{level}:\n" for level in range(900)) + " " * 900 + "x\n"
    error, _ = refused(text)
    assert f"nested deeper than {MAX_BUNDLE_DEPTH} levels" in str(error)
    assert error.problems[0].line == MAX_BUNDLE_DEPTH  # the key that is one level too deep


def test_deep_json_is_a_bundle_error_without_recursion() -> None:
    text = '{"agent": {"name": "A"}, "x": ' + "[" * 50_000 + "]" * 50_000 + "}"
    error, peak = refused(text, "json")
    (problem,) = error.problems
    assert f"nested deeper than {MAX_BUNDLE_DEPTH} levels" in problem.message
    assert problem.line == 1
    assert peak < 4 * MIB


def test_deep_json_that_yaml_cannot_read_is_still_bounded() -> None:
    # an escaped surrogate pair is JSON that YAML's parser refuses: only json.loads reads it
    text = '{"agent": {"name": "A\\ud83d\\ude00"}, "x": ' + "[" * 50_000 + "]" * 50_000 + "}"
    error, _ = refused(text, "json")
    assert f"nested deeper than {MAX_BUNDLE_DEPTH} levels" in str(error)


def test_a_yaml_alias_chain_is_refused_as_it_is_composed(
    nodes_built: Callable[[], int],
) -> None:
    # 16 KB: each level repeats the one before it a hundred times (100**8 nodes expanded)
    levels = ["a0: &a0 [" + ", ".join(["x"] * 100) + "]"]
    for i in range(1, 9):
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 100) + "]")
    text = "\n".join(levels) + "\nagent: {name: A}\n"
    assert len(text) < 20_000
    error, peak = refused(text)
    assert "nodes" in str(error)
    assert "aliases" in str(error)
    assert error.problems[0].line is not None
    assert nodes_built() < 2_000
    assert peak < 8 * MIB


def test_billion_laughs_is_refused_quickly(nodes_built: Callable[[], int]) -> None:
    lines = ['lol0: &lol0 "lol"']
    for i in range(1, 10):
        lines.append(f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * 9) + "]")
    text = "\n".join(lines) + "\nagent: {name: A}\n"
    error, peak = refused(text)
    assert "too large to be a bundle" in str(error)
    assert nodes_built() < 200
    assert peak < 2 * MIB


def test_a_recursive_alias_is_refused() -> None:
    error, _ = refused("agent: {name: A}\nx: &loop [1, *loop]\n")
    assert "refers to itself" in str(error)
    assert error.problems[0].line == 2


@pytest.mark.slow  # builds a 6 MB file and parses 250,000 nodes of it: seconds
def test_a_flat_yaml_list_of_three_million_items_stops_at_the_node_limit(
    nodes_built: Callable[[], int],
) -> None:
    text = "agent: {name: A}\nx: [" + "1," * 3_000_000 + "1]\n"
    assert len(text) > 6_000_000
    error, _ = refused(text)
    assert f"more than {MAX_BUNDLE_NODES:,} nodes" in str(error)
    assert nodes_built() <= MAX_BUNDLE_NODES + 10


def test_a_flat_json_list_of_three_million_items_is_refused_before_parsing(
    nodes_built: Callable[[], int],
) -> None:
    text = '{"agent": {"name": "A"}, "x": [' + "1," * 3_000_000 + "1]}"
    error, peak = refused(text, "json")
    assert f"more than {MAX_BUNDLE_NODES:,} nodes" in str(error)
    assert nodes_built() == 0
    assert peak < 64 * MIB  # a few copies of the 6 MB text, never a parsed tree


def test_data_just_within_the_limits_still_loads() -> None:
    deep: Any = "leaf"
    for _ in range(MAX_BUNDLE_DEPTH - 8):
        deep = [deep]
    text = json.dumps({"agent": {"name": "A"}, "guidelines": [], "x": deep})
    with pytest.raises(BundleError) as caught:  # `x` is not a bundle key: the depth is fine
        reads_bundle(text, fmt="json")
    assert "unknown key 'x'" in str(caught.value)
    assert "deeper" not in str(caught.value)
    with pytest.raises(BundleError) as caught:
        reads_bundle(yaml.safe_dump({"agent": {"name": "A"}, "x": deep}))
    assert "unknown key 'x'" in str(caught.value)


def test_validate_reports_a_deep_file_as_unreadable_without_a_traceback(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("agent: {name: A}\nx: " + "[" * 5000 + "]" * 5000 + "\n")
    deep_json = tmp_path / "deep.json"
    deep_json.write_text('{"agent": {"name": "A"}, "x": ' + "[" * 50_000 + "]" * 50_000 + "}")
    result = CliRunner().invoke(cli, ["validate", str(deep), str(deep_json)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert f"{deep}:2" in result.output
    assert "nested deeper than" in result.output
    assert str(deep_json) in result.output


def test_data_from_memory_has_the_bounds_of_a_file() -> None:
    deep: Any = "leaf"
    for _ in range(100_000):
        deep = [deep]
    tool = {"name": "t", "parameters": {"type": "object", "default": deep}}
    with pytest.raises(BundleError, match=f"nested deeper than {MAX_BUNDLE_DEPTH} levels"):
        bundle_from_data({"agent": {"name": "A"}, "tools": [tool]})
    wide = {"agent": {"name": "A"}, "tools": [{"name": "t", "parameters": {"enum": [1] * 300_000}}]}
    with pytest.raises(BundleError, match=f"more than {MAX_BUNDLE_NODES:,} nodes"):
        bundle_from_data(wide)


def test_a_huge_file_is_refused_without_being_read_whole(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as file:
        file.write(b"agent: {name: A}\n#")
        file.truncate(64 * MIB)  # sparse: costs no disk
    tracemalloc.start()
    try:
        with pytest.raises(BundleError, match="too large to be a bundle file"):
            load_bundle(huge)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * MIB  # the first 16 MiB and a byte, never the 64
