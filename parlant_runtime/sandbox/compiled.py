"""Compiling checked templates and expressions, and running them within bounds.

Compilation rewrites the tree before Jinja generates code
(:class:`~parlant_runtime.sandbox.bounds.BoundedTree`): loops, ``~``, literals and
comparisons go through the bounds. Every render or evaluation runs with a fresh
work budget. Expressions are compiled through the same rewrite.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from jinja2 import Template, Undefined, nodes
from jinja2.environment import TemplateExpression
from jinja2.parser import Parser

from parlant_runtime.errors import TemplateSandboxError
from parlant_runtime.sandbox.analysis import analyse
from parlant_runtime.sandbox.bounds import bounded, helpers, work_scope
from parlant_runtime.sandbox.environment import MAX_OUTPUT_CHARS, sandbox

__all__ = [
    "CompiledExpression",
    "CompiledTemplate",
    "compile_expression",
    "compile_template",
    "render",
]


class CompiledTemplate:
    """A template checked and compiled once, rendered many times."""

    __slots__ = ("_template", "source")

    def __init__(self, source: str) -> None:
        analysis = analyse(source, expression=False)
        if analysis.error is not None:
            raise TemplateSandboxError(f"template {analysis.error}")
        self.source = source
        try:
            tree = bounded(sandbox.parse(source))
            self._template: Template = sandbox.from_string(tree)
        except RecursionError as exc:
            raise TemplateSandboxError("template is nested too deeply to compile") from exc

    def render(self, context: Mapping[str, Any], *, max_chars: int = MAX_OUTPUT_CHARS) -> str:
        """Render with bounded output and loops.

        Raises:
            TemplateSandboxError: it reads something undefined, breaks a sandbox rule,
                or renders more than ``max_chars`` characters.
        """
        parts: list[str] = []
        size = 0
        try:
            with work_scope(max_chars):
                for chunk in self._template.generate({**context, **helpers()}):
                    size += len(chunk)
                    if size > max_chars:
                        raise TemplateSandboxError(
                            f"template output exceeds {max_chars:,} characters; shorten it"
                        )
                    parts.append(chunk)
        except TemplateSandboxError:
            raise
        except Exception as exc:  # whatever a user's template does wrong is the template's fault
            raise TemplateSandboxError(f"template cannot be rendered: {exc}") from exc
        return "".join(parts)


class CompiledExpression:
    """An expression condition checked and compiled once, evaluated many times."""

    __slots__ = ("_expression", "source")

    def __init__(self, source: str) -> None:
        analysis = analyse(source, expression=True)
        if analysis.error is not None:
            raise TemplateSandboxError(f"expression {analysis.error}")
        self.source = source
        try:
            parser = Parser(sandbox, source, state="variable")
            expression = parser.parse_expression()
            body = [nodes.Assign(nodes.Name("result", "store"), expression, lineno=1)]
            template = sandbox.from_string(bounded(nodes.Template(body, lineno=1)))
        except RecursionError as exc:
            raise TemplateSandboxError("expression is nested too deeply to compile") from exc
        self._expression = TemplateExpression(template, undefined_to_none=False)

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        """The expression's value.

        Raises:
            TemplateSandboxError: it reads something undefined or breaks a sandbox rule.
        """
        try:
            with work_scope(MAX_OUTPUT_CHARS):
                value = self._expression(**context, **helpers())
            if isinstance(value, Undefined):
                value._fail_with_undefined_error()
        except Exception as exc:  # whatever a user's expression does wrong is its own fault
            raise TemplateSandboxError(f"expression cannot be evaluated: {exc}") from exc
        return value


@functools.lru_cache(maxsize=2048)
def compile_template(source: str) -> CompiledTemplate:
    """The compiled template for ``source`` (cached; raises :class:`TemplateSandboxError`)."""
    return CompiledTemplate(source)


@functools.lru_cache(maxsize=2048)
def compile_expression(source: str) -> CompiledExpression:
    """The compiled expression for ``source`` (cached; raises :class:`TemplateSandboxError`)."""
    return CompiledExpression(source)


def render(text: str, context: Mapping[str, Any], *, max_chars: int = MAX_OUTPUT_CHARS) -> str:
    """Render a template in the sandbox (see :meth:`CompiledTemplate.render`)."""
    return compile_template(text).render(context, max_chars=max_chars)
