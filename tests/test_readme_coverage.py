"""The README's coverage table is what ``parlant-runtime test examples --coverage`` reports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from parlant_runtime.cli import cli

ROOT = Path(__file__).parent.parent
ROW = re.compile(
    r"^\| `(examples/[^`]+\.yaml)` \| (\d+) \| (\d+/\d+) \| (\d+/\d+) \| (\d+/\d+) \| (\d+/\d+) \|$"
)


def readme_rows() -> dict[str, tuple[str, ...]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return {match[1]: match.groups()[1:] for match in map(ROW.match, text.splitlines()) if match}


def measured_rows() -> dict[str, tuple[str, ...]]:
    result = CliRunner().invoke(
        cli, ["test", str(ROOT / "examples"), "--coverage", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = {}
    for bundle in json.loads(result.stdout)["coverage"]["bundles"]:
        path = Path(bundle["bundle"]).resolve().relative_to(ROOT).as_posix()
        kinds = ("states", "transitions", "guidelines", "canned_responses")
        rows[path] = (
            str(bundle["cases"]),
            *(f"{bundle[kind]['covered']}/{bundle[kind]['total']}" for kind in kinds),
        )
    return rows


def test_the_readme_coverage_table_matches_a_real_run() -> None:
    rows = readme_rows()
    assert len(rows) >= 5, "the README's coverage table is missing or reformatted"
    assert rows == measured_rows()


def test_every_example_bundle_is_fully_covered_by_its_tests() -> None:
    rows = measured_rows()
    bundles = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "examples").rglob("*.yaml")
        if not path.name.endswith(".conversation.yaml")
    }
    assert set(rows) == bundles  # every example bundle has tests, and each is measured
    for path, (_, *fractions) in rows.items():
        for fraction in fractions:
            covered, total = fraction.split("/")
            assert covered == total, (path, fraction)
