"""The one sandboxed Jinja environment for templates and expression conditions.

Templates (state prompts, canned responses, tool arguments) and expression
conditions (``{{ ... }}``) come from a database that many people edit, so they run
in an immutable Jinja sandbox: no attribute that starts with an underscore, no
internals of functions, frames or generators, no loading of other templates, no
macros, and every loop, string, list and number a template builds bounded by
its size at every level of nesting, with a work budget per render
(:mod:`.environment` and :mod:`.bounds` list the limits). The validator uses the same environment
and the same static checks (:func:`analyse`), so a template it accepts is one the
runtime can run, and one that reaches for ``__class__`` is refused before it is
published.

What a template or expression can read (the turn context):

=============  ==========================================================
``vars``       the session's variables (private ones only in conditions)
``message``    the customer's message text
``session``    the session: id, mode, status, metadata
``journey``    the active journey: title
``state``      the current state: name, type
``tool``       the latest result of each tool, by tool name
``kb``         knowledge-base results of this turn
``mentions``   ``mentions('term')``: the message names a glossary term or a synonym
=============  ==========================================================
"""

from __future__ import annotations

from parlant_runtime.sandbox.analysis import (
    Analysis,
    ConditionKind,
    VariableRead,
    analyse,
    clear_caches,
    condition_kind,
    expression_source,
    has_template_syntax,
)
from parlant_runtime.sandbox.compiled import (
    CompiledExpression,
    CompiledTemplate,
    compile_expression,
    compile_template,
    render,
)
from parlant_runtime.sandbox.environment import (
    CONTEXT_ROOTS,
    FORBIDDEN_ATTRIBUTES,
    MAX_ITERATIONS,
    MAX_OUTPUT_CHARS,
    MAX_POWER_BITS,
    MAX_POWER_EXPONENT,
    MAX_RANGE,
    MAX_SOURCE_CHARS,
    MAX_VALUE_CHARS,
    MAX_WORK,
    sandbox,
)

__all__ = [
    "CONTEXT_ROOTS",
    "FORBIDDEN_ATTRIBUTES",
    "MAX_ITERATIONS",
    "MAX_OUTPUT_CHARS",
    "MAX_POWER_BITS",
    "MAX_POWER_EXPONENT",
    "MAX_RANGE",
    "MAX_SOURCE_CHARS",
    "MAX_VALUE_CHARS",
    "MAX_WORK",
    "Analysis",
    "CompiledExpression",
    "CompiledTemplate",
    "ConditionKind",
    "VariableRead",
    "analyse",
    "clear_caches",
    "compile_expression",
    "compile_template",
    "condition_kind",
    "expression_source",
    "has_template_syntax",
    "render",
    "sandbox",
]
