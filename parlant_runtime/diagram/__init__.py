"""Journey diagrams: see a journey's states and transitions, with its findings marked.

A journey is easier to check drawn than read as YAML, and a validation finding is
easier to act on when the state or transition it names is red in the picture. The
path is model -> diagram graph -> renderer: :func:`build_diagram` turns one
:class:`~parlant_runtime.bundle.JourneySpec` and the findings about it into a
:class:`JourneyDiagram` (plain data, renderer-independent), and :func:`to_mermaid`
and :func:`to_dot` write that graph as Mermaid or Graphviz DOT text.

Example::

    loaded = read_bundle("examples/clinic.yaml")
    report = validate_bundle(loaded)
    for index, journey in enumerate(loaded.bundle.journeys):
        print(to_mermaid(build_diagram(journey, index, report.findings)))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parlant_runtime._lazy import lazy_exports

if TYPE_CHECKING:
    from parlant_runtime.diagram.dot import to_dot
    from parlant_runtime.diagram.mermaid import to_mermaid
    from parlant_runtime.diagram.model import (
        DiagramEdge,
        DiagramNode,
        JourneyDiagram,
        build_diagram,
        mark_coverage,
    )

__all__ = [
    "DiagramEdge",
    "DiagramNode",
    "JourneyDiagram",
    "build_diagram",
    "mark_coverage",
    "to_dot",
    "to_mermaid",
]

if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__)
