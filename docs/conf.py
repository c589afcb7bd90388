"""Sphinx configuration of the documentation site.

The pages are the Markdown files in this folder, read by MyST; the theme is furo.
Build with ``./run docs`` (or ``sphinx-build -W --keep-going -n -b html docs
docs/_build/html``); ``tests/test_docs.py`` runs the same build and fails on any
warning, so a broken link, anchor or cross-reference fails CI.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

project = "parlant-runtime"
author = "the parlant-runtime authors"
copyright = "the parlant-runtime authors"
try:
    release = metadata.version("parlant-runtime")
except metadata.PackageNotFoundError:  # built from a source tree that was never installed
    release = "unknown"
version = release

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Headings down to #### get anchors, so `page.md#section` links work here as on GitHub;
# a link to an anchor that does not exist is a warning, hence an error under -W.
myst_heading_anchors = 4
myst_enable_extensions = ["deflist"]


html_theme = "furo"
html_title = f"parlant-runtime {release}"
pygments_style = "default"


# Pages being written alongside this site. index.md lists them; until a page exists its
# toctree line is left out (a toctree line naming a missing page is a warning, so an
# error under -W). Every other page must exist: nothing else is tolerated.
OPTIONAL_PAGES = ("chat", "testing", "embedding")


def _drop_missing_optional_pages(app: Any, docname: str, source: list[str]) -> None:
    if docname != "index":
        return
    folder = Path(app.srcdir)
    missing = {page for page in OPTIONAL_PAGES if not (folder / f"{page}.md").exists()}
    if missing:
        lines = source[0].splitlines(keepends=True)
        source[0] = "".join(line for line in lines if line.strip() not in missing)


def setup(app: Any) -> dict[str, Any]:
    app.connect("source-read", _drop_missing_optional_pages)
    return {"parallel_read_safe": True}
