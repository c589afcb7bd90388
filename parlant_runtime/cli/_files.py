"""Finding the files named on the command line: files as given, folders searched."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from parlant_runtime.testing.schema import CONVERSATION_FILE_SUFFIX

__all__ = ["BUNDLE_SUFFIXES", "expand_paths", "expand_test_paths"]

BUNDLE_SUFFIXES = frozenset({".yaml", ".yml", ".json"})


def _expand(paths: Iterable[str], wanted: Callable[[Path], bool]) -> list[str]:
    """Files as given (whatever their names); folders replaced by the ``wanted`` files
    below them, sorted, hidden folders and files left out; no file twice.

    A path that does not exist is kept, so that reading it reports the problem
    together with every other file's result.
    """
    files: list[str] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(
                candidate
                for candidate in path.rglob("*")
                if candidate.is_file()
                and wanted(candidate)
                and not any(part.startswith(".") for part in candidate.relative_to(path).parts)
            )
            files.extend(str(candidate) for candidate in found)
        else:
            files.append(given)
    return list(dict.fromkeys(files))


def _is_test_file(path: Path) -> bool:
    return path.name.endswith(CONVERSATION_FILE_SUFFIX)


def _is_bundle_file(path: Path) -> bool:
    # conversation tests live beside bundles; folders of bundles skip them
    return path.suffix.lower() in BUNDLE_SUFFIXES and not path.name.lower().endswith(
        CONVERSATION_FILE_SUFFIX
    )


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Bundle files: as given, or the ``.yaml``/``.yml``/``.json`` files below a folder."""
    return _expand(paths, _is_bundle_file)


def expand_test_paths(paths: Iterable[str]) -> list[str]:
    """Conversation-test files: as given, or the ``*.conversation.yaml`` below a folder."""
    return _expand(paths, _is_test_file)
