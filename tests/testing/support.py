"""Helpers shared by the conversation-test tests: example paths, writing and running files."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from parlant_runtime.testing import FileResult, run_conversation_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
EXAMPLE_TESTS = EXAMPLES / "tests"
MINIMAL = EXAMPLES / "minimal.yaml"
CLINIC = EXAMPLES / "clinic.yaml"
RETURNS = EXAMPLES / "returns.yaml"
MALFORMED_BUNDLE = ROOT / "tests" / "bundles" / "malformed" / "bad_enum.yaml"

BOOK = "customer wants to book an appointment"
EMERGENCY = "customer describes chest pain, difficulty breathing or another emergency"


def write(folder: Path, text: str, name: str = "case.conversation.yaml") -> Path:
    """Write a test file (dedented) into ``folder``."""
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def run(path: Path, *, bundle: Path | None = None) -> FileResult:
    """Run a test file as the command does."""
    return asyncio.run(run_conversation_file(path, bundle=bundle))


def one_case(folder: Path, body: str, *, bundle: Path = MINIMAL) -> Path:
    """A file with one case named ``it`` whose body (tools, variables, steps) is ``body``."""
    indented = textwrap.indent(textwrap.dedent(body).strip(), "    ")
    return write(folder, f"bundle: {bundle}\ncases:\n  - name: it\n{indented}\n")
