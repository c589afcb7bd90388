"""The one exception tree of parlant-runtime.

Every error the library raises on purpose derives from :class:`ParlantRuntimeError`,
so a chat backend can catch the library's errors with one ``except`` clause and
let programming errors through. The whole tree, with the module that defines each
class (``tests/test_errors.py`` checks this drawing against the code)::

    ParlantRuntimeError      errors: the root
    ├── BundleError          errors: a bundle file cannot be read or breaks the format
    ├── TemplateSandboxError errors: a template or expression does what the sandbox forbids
    ├── StorageError         storage.port: the root of the storage errors
    │   ├── NotFound             storage.port: no such agent, session or event here
    │   ├── ConcurrentUpdate     storage.port: another turn committed first; retry
    │   ├── DuplicateMessage     storage.port: this idempotency key is recorded already
    │   ├── InvalidData          storage.port: the data breaks a rule; nothing written
    │   ├── PublishRefused       storage.port: publishing would strand sessions
    │   ├── DatabaseURLError     storage.port: a URL the library cannot use
    │   ├── DatabaseUnavailable  storage.port: the database cannot be reached
    │   └── MigrationError       storage.port: a migration failed and was rolled back
    │       ├── AdoptionRefused      storage.adopt: the host's tables do not fit; nothing changed
    │       └── LayoutRefused        storage.citus: the tables cannot be sharded; nothing changed
    ├── SessionClosed        engine.runtime: the session takes no more messages
    ├── ToolError            engine.tools: a tool is set up wrongly
    │   └── ToolArgumentError    engine.tools: arguments break the tool's schema
    ├── ToolFailure          engine.tools: a tool's own failure, its message always shown
    │   └── ToolStubError        testing.runner: what a stubbed tool raises in a test
    ├── KnowledgeError       engine.knowledge: a retriever broke its contract
    ├── LanguageModelError   llm.port: a model call failed or a model cannot be used
    ├── ConversationFileError testing.loader: a conversation test file cannot be read
    ├── ChatError            cli._chat_session: the chat cannot start or go on
    └── LineError            cli._chat_session: one chat input line cannot be carried out

Module names are relative to ``parlant_runtime``; every class outside ``cli`` is
importable from the package root (``from parlant_runtime import NotFound``), which is
where hosts import them from. Messages say what happened and
what to do about it; where a file is involved they name the file, the line and the
field path. Driver errors (SQLAlchemy, asyncpg, sqlite3) are translated into
:class:`StorageError` subclasses at the storage adapter's boundary, with the
original chained as ``__cause__``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BundleError", "BundleProblem", "ParlantRuntimeError", "TemplateSandboxError"]


class ParlantRuntimeError(Exception):
    """Root of every error raised by parlant-runtime."""


@dataclass(frozen=True, slots=True)
class BundleProblem:
    """One problem with a bundle file: where it is and what is wrong.

    Attributes:
        file: the file's path as given, or ``None`` for data that came from memory.
        line: 1-based line number, when it is known.
        field: the field path in the file's own spelling (``journeys[0].states[2].stateType``),
            empty for a problem with the file as a whole.
        message: what is wrong and, where it helps, what to write instead.
    """

    file: str | None
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file or "<bundle>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        if self.field:
            where = f"{where} {self.field}"
        return f"{where}: {self.message}"


class BundleError(ParlantRuntimeError):
    """A bundle could not be read: every problem found is listed, not only the first."""

    def __init__(self, problems: list[BundleProblem]) -> None:
        if not problems:
            raise ValueError("BundleError needs at least one problem")
        self.problems: tuple[BundleProblem, ...] = tuple(problems)
        count = len(self.problems)
        heading = "1 problem" if count == 1 else f"{count} problems"
        super().__init__(
            f"the bundle cannot be loaded ({heading}):\n"
            + "\n".join(f"  {problem}" for problem in self.problems)
        )


class TemplateSandboxError(ParlantRuntimeError):
    """A template or expression does what the sandbox forbids or cannot be parsed."""
