"""Finding the bundle files named on the command line (files and folders)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from parlant_runtime.testing.schema import CONVERSATION_FILE_SUFFIX

__all__ = ["BUNDLE_SUFFIXES", "expand_paths"]

BUNDLE_SUFFIXES = frozenset({".yaml", ".yml", ".json"})


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Files as given; folders replaced by the bundle files below them, sorted.

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
                and candidate.suffix.lower() in BUNDLE_SUFFIXES
                # conversation tests live beside bundles; folders of bundles skip them
                and not candidate.name.lower().endswith(CONVERSATION_FILE_SUFFIX)
                and not any(part.startswith(".") for part in candidate.relative_to(path).parts)
            )
            files.extend(str(candidate) for candidate in found)
        else:
            files.append(given)
    return list(dict.fromkeys(files))
