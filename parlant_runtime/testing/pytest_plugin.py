"""The pytest plugin: conversation test files collected as tests, one item per case.

Installed through the ``pytest11`` entry point, so ``pytest`` finds files named
``*.conversation.yaml`` under the paths it collects (only that suffix: a plain
``.yaml`` file is never mistaken for a test) and runs each case as an item named
after it, e.g. ``tests/clinic.conversation.yaml::books a visit on Monday``. A
failing case shows the same report as ``parlant-runtime test``; a file that
cannot be read (or whose bundle cannot) is a collection error listing every
problem with its line. ``--conversation-bundle FILE`` runs every file against
another bundle, as ``--bundle`` does for the command.
``--conversation-coverage`` adds the coverage report of the cases that ran to the
terminal summary (as ``parlant-runtime test --coverage`` prints it), and
``--conversation-coverage-json FILE`` writes it as JSON. Disable the plugin with
``-p no:parlant-runtime``.

It adds no markers, fixtures or warnings, so projects that run pytest with
``--strict-markers`` and warnings as errors are not disturbed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest

from parlant_runtime.bundle import AgentBundle
from parlant_runtime.testing.coverage import (
    coverage_of,
    coverage_to_json,
    render_coverage_text,
)
from parlant_runtime.testing.loader import (
    ConversationFile,
    ConversationFileError,
    read_conversation_file,
)
from parlant_runtime.testing.report import failure_headline, failure_text
from parlant_runtime.testing.results import CaseResult, FileResult
from parlant_runtime.testing.runner import load_case_bundle, run_case
from parlant_runtime.testing.schema import CONVERSATION_FILE_SUFFIX

__all__ = [
    "ConversationCaseFailed",
    "ConversationCaseItem",
    "ConversationTestFile",
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_terminal_summary",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--conversation-bundle FILE``: run every conversation test file against FILE."""
    group = parser.getgroup("parlant-runtime", "conversation tests (parlant-runtime)")
    group.addoption(
        "--conversation-bundle",
        metavar="FILE",
        default=None,
        help="run every *.conversation.yaml file against this bundle instead of its own",
    )
    group.addoption(
        "--conversation-coverage",
        action="store_true",
        default=False,
        help="report the states, transitions, guidelines and canned responses the "
        "conversation test cases reached, and those they never did",
    )
    group.addoption(
        "--conversation-coverage-json",
        metavar="FILE",
        default=None,
        help="write that coverage report as JSON to FILE",
    )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect ``*.conversation.yaml`` files."""
    if file_path.name.endswith(CONVERSATION_FILE_SUFFIX):
        collector: pytest.Collector = ConversationTestFile.from_parent(parent, path=file_path)
        return collector
    return None


_RAN = pytest.StashKey[list[tuple[str, str, CaseResult]]]()
"""Every case run: its file, its bundle and its result (what coverage reads)."""


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """With ``--conversation-coverage`` (or ``-json FILE``): the coverage of the cases run."""
    text = config.getoption("conversation_coverage", default=False)
    json_file = config.getoption("conversation_coverage_json", default=None)
    ran = config.stash.get(_RAN, [])
    if not (text or json_file) or not ran:
        return
    by_file: dict[tuple[str, str], list[CaseResult]] = {}
    for path, bundle, result in ran:
        by_file.setdefault((path, bundle), []).append(result)
    files = [FileResult(path, bundle, tuple(cases)) for (path, bundle), cases in by_file.items()]
    report = coverage_of(files)
    if text:
        terminalreporter.section("conversation test coverage")
        terminalreporter.write(click.unstyle(render_coverage_text(report)))
    if json_file:
        data = json.dumps(coverage_to_json(report), indent=2, ensure_ascii=False)
        Path(json_file).write_text(data + "\n", encoding="utf-8")


class ConversationCaseFailed(Exception):
    """A case did not pass (the item's failure shows the report, not a traceback)."""

    def __init__(self, result: CaseResult) -> None:
        assert result.failure is not None
        super().__init__(failure_headline(result.failure))
        self.result = result


class _Unrunnable(Exception):
    """The case could not run at all (its bundle cannot be published)."""


class ConversationTestFile(pytest.File):
    """A conversation test file: its cases are its items."""

    def collect(self) -> Iterator[pytest.Item]:
        override = self.config.getoption("conversation_bundle", default=None)
        try:
            loaded = read_conversation_file(self.path)
            bundle_path, bundle = load_case_bundle(loaded, override)
        except ConversationFileError as exc:
            lines = "\n".join(f"  {problem}" for problem in exc.problems)
            raise self.CollectError(f"{self.path} cannot be read:\n{lines}") from None
        for index, case in enumerate(loaded.spec.cases):
            yield ConversationCaseItem.from_parent(
                self,
                name=case.name,
                loaded=loaded,
                index=index,
                bundle=bundle,
                bundle_path=bundle_path,
            )


class ConversationCaseItem(pytest.Item):
    """One case of a conversation test file."""

    def __init__(
        self,
        *,
        loaded: ConversationFile,
        index: int,
        bundle: AgentBundle,
        bundle_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.loaded = loaded
        self.index = index
        self.bundle = bundle
        self.bundle_path = bundle_path

    def runtest(self) -> None:
        try:
            result = asyncio.run(run_case(self.loaded, self.index, self.bundle))
        except ConversationFileError as exc:
            raise _Unrunnable("\n".join(str(problem) for problem in exc.problems)) from None
        if self.bundle_path is not None:
            ran = self.config.stash.setdefault(_RAN, [])
            ran.append((str(self.path), self.bundle_path, result))
        if not result.passed:
            raise ConversationCaseFailed(result)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> Any:
        error = excinfo.value
        if isinstance(error, ConversationCaseFailed) and error.result.failure is not None:
            where = f"{self.path}:{error.result.line}" if error.result.line else str(self.path)
            failure = error.result.failure
            # the first line is what pytest's short summary shows
            return f"{failure_headline(failure)}\n{where}: case {self.name!r}\n" + failure_text(
                failure
            )
        if isinstance(error, _Unrunnable):
            return f"the case cannot run:\n{error}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.loaded.line_of("cases", self.index)
        return self.path, (line - 1 if line is not None else None), f"case: {self.name}"
