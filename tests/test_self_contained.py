"""The repository stands alone: no tracked file points at material that does not ship with it.

The contracts (bundle format, validation codes, conversation tests) and the design's
reasons are pages of ``docs/``. A reference to a sibling folder of the checkout (the
team's working notes, say) would be a dead link for every user of the package, so
this test fails on one. CI's own script may start infrastructure that lives outside
the repository (a database cluster build), which is why ``.ci/`` is not read.
"""

from __future__ import annotations

import re
import subprocess
import tomllib

import pytest

from tests.conftest import ROOT

# a path into a folder beside the checkout, or the names of the team's note folders;
# the slash is written as a class so that this file does not cite what it forbids
NOTES = "shared"
OUTSIDE = re.compile(rf"\.\./{NOTES}\b|\b{NOTES}[/](spec|design|reference|seed)\b")


def _tracked_files() -> list[str]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30
        )
    except (OSError, subprocess.CalledProcessError) as exc:  # a source tarball has no .git
        pytest.skip(f"not a git checkout: {exc}")
    return [name for name in listed.stdout.decode().split("\0") if name]


@pytest.mark.subprocess
def test_no_tracked_file_refers_outside_the_repository() -> None:
    offenders = []
    for name in _tracked_files():
        if name.startswith(".ci/"):
            continue
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue  # binary files, or a file deleted in the working tree
        for number, line in enumerate(text.splitlines(), start=1):
            if OUTSIDE.search(line):
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert offenders == [], "files citing what does not ship:\n" + "\n".join(offenders)


def test_the_pattern_catches_what_it_names() -> None:
    # the check above is only as good as its pattern: it must see both spellings
    assert OUTSIDE.search(f"see ../{NOTES}/citus/README.md")
    assert OUTSIDE.search(f"the contract is ``{NOTES}/spec/validation.md``")
    assert not OUTSIDE.search("a shared/exclusive lock")


def test_the_license_file_is_the_license_the_metadata_names() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
