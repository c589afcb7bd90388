"""Sphinx configuration of the documentation site.

The pages are the Markdown files in this folder, read by MyST; the theme is furo.
Build with ``./run docs`` (or ``sphinx-build -W --keep-going -n -b html docs
docs/_build/html``); ``tests/test_docs.py`` runs the same build and fails on any
warning, so a broken link, anchor or cross-reference fails CI.
"""

from __future__ import annotations

from importlib import metadata

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
