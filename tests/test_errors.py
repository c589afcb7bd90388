"""The error tree drawn in ``parlant_runtime/errors.py`` is the tree the code has."""

from __future__ import annotations

import importlib
import pkgutil
import re

import parlant_runtime
from parlant_runtime import errors
from parlant_runtime.errors import ParlantRuntimeError

# one line of the drawing: the branch characters, the class name, its module
LINE = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>[A-Z]\w+)\s+(?P<module>[\w.]+):")


def _drawn() -> dict[str, tuple[str | None, str]]:
    """Each class in the docstring's drawing: (its parent's name, its module)."""
    doc = errors.__doc__ or ""
    drawing = doc.split("::", 1)[1].split("\n\n", 2)[1]
    found: dict[str, tuple[str | None, str]] = {}
    parents: list[tuple[int, str]] = []  # (depth, name) of the open branches
    for line in drawing.splitlines():
        match = LINE.match(line.strip("\n")[4:])  # the drawing is indented by four
        assert match is not None, f"unreadable line of the drawing: {line!r}"
        depth = len(match["indent"])
        while parents and parents[-1][0] >= depth:
            parents.pop()
        parent = parents[-1][1] if parents else None
        module = match["module"]
        found[match["name"]] = (parent, module)
        parents.append((depth, match["name"]))
    return found


def _actual() -> dict[str, tuple[str | None, str]]:
    for info in pkgutil.walk_packages(parlant_runtime.__path__, "parlant_runtime."):
        if info.name.endswith("pytest_plugin"):
            continue  # imports pytest's internals; defines no error
        importlib.import_module(info.name)
    found: dict[str, tuple[str | None, str]] = {}
    pending: list[type[BaseException]] = [ParlantRuntimeError]
    while pending:
        cls = pending.pop()
        bases = [base for base in cls.__bases__ if issubclass(base, ParlantRuntimeError)]
        parent = bases[0].__name__ if bases else None
        module = cls.__module__.removeprefix("parlant_runtime.")
        found[cls.__name__] = (parent, module)
        pending.extend(cls.__subclasses__())
    return found


def test_the_drawing_names_every_error_with_its_parent_and_module() -> None:
    assert _drawn() == _actual()


def test_the_drawing_is_read_whole() -> None:
    # the comparison above is empty-proof only if the drawing really was parsed
    drawn = _drawn()
    assert drawn["ParlantRuntimeError"] == (None, "errors")
    assert drawn["ToolArgumentError"] == ("ToolError", "engine.tools")
    assert drawn["LineError"] == ("ParlantRuntimeError", "cli._chat_session")


def test_every_error_a_host_can_meet_is_exported_from_the_root() -> None:
    # the command line's own errors end the command; every other one reaches a host
    hosts_meet = {name for name, (_, module) in _drawn().items() if not module.startswith("cli.")}
    assert hosts_meet <= set(parlant_runtime.__all__)
    for name in hosts_meet:
        assert getattr(parlant_runtime, name).__name__ == name
