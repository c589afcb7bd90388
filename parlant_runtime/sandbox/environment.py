"""The sandboxed Jinja environment itself: what templates may touch, and every bound.

Everything a template can build is bounded before it is built where that is
possible (``*``, ``+``, ``**``, ``replace``, ``join``, ``range``) and checked right
after otherwise (other filters, calls); text is made of a value only once its size
is known to be within bounds (printing, ``string``, ``tojson``, ``~``); sizes count
every level of nesting, and every operation draws from the render's work budget
(:mod:`parlant_runtime.sandbox.bounds`). Limits are module constants so that docs
and tests name them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, cast

from jinja2 import StrictUndefined, Undefined
from jinja2.exceptions import SecurityError
from jinja2.filters import make_attrgetter
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import (
    UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
    UNSAFE_COROUTINE_ATTRIBUTES,
    UNSAFE_GENERATOR_ATTRIBUTES,
    ImmutableSandboxedEnvironment,
)
from jinja2.utils import Namespace, pass_eval_context

from parlant_runtime.sandbox.bounds import (
    HELPER_FILTERS,
    MAX_ITERATIONS,
    MAX_VALUE_CHARS,
    MAX_WORK,
    LoopBudget,
    bounded_concat,
    charge,
    charge_walk,
    charged_test,
    check_text_size,
    checked_value,
    output_limit,
    size_of,
    too_big,
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
    "LoopBudget",
    "bounded_concat",
    "sandbox",
]

MAX_OUTPUT_CHARS = 20_000
"""Longest text a template may render; longer output is an error, never truncated."""

MAX_RANGE = 1_000
"""Longest ``range()`` a template may ask for."""

MAX_POWER_EXPONENT = 64
"""Largest exponent of ``**`` (big enough for arithmetic, too small for a memory bomb)."""

MAX_POWER_BITS = 4_096
"""Largest integer ``**`` or ``*`` may build, in bits."""

MAX_SOURCE_CHARS = 50_000
"""Longest template or expression source accepted at all."""

CONTEXT_ROOTS = frozenset(
    {"vars", "message", "session", "journey", "state", "tool", "kb", "mentions"}
)
"""Names a template or expression can read; everything else is undefined."""

FORBIDDEN_ATTRIBUTES = frozenset(
    {"mro", "format", "format_map", "func_globals", "f_globals", "f_locals", "f_builtins"}
    | UNSAFE_GENERATOR_ATTRIBUTES
    | UNSAFE_COROUTINE_ATTRIBUTES
    | UNSAFE_ASYNC_GENERATOR_ATTRIBUTES
)
"""Attributes refused besides those starting with an underscore."""

_SAFE_STR_METHODS = frozenset(
    [
        "capitalize",
        "casefold",
        "count",
        "endswith",
        "find",
        "index",
        "isalnum",
        "isalpha",
        "isdigit",
        "islower",
        "isnumeric",
        "isspace",
        "istitle",
        "isupper",
        "lower",
        "lstrip",
        "partition",
        "rfind",
        "rpartition",
        "rsplit",
        "rstrip",
        "split",
        "splitlines",
        "startswith",
        "strip",
        "swapcase",
        "title",
        "upper",
    ]
)  # no padding (center, ljust, zfill, expandtabs) nor format: they can build huge strings

_SAFE_FILTERS = frozenset(
    [
        "abs",
        "attr",
        "batch",
        "capitalize",
        "count",
        "d",
        "default",
        "dictsort",
        "e",
        "escape",
        "filesizeformat",
        "first",
        "float",
        "groupby",
        "int",
        "items",
        "join",
        "last",
        "length",
        "list",
        "lower",
        "map",
        "max",
        "min",
        "reject",
        "rejectattr",
        "reverse",
        "round",
        "select",
        "selectattr",
        "slice",
        "sort",
        "string",
        "striptags",
        "sum",
        "title",
        "tojson",
        "trim",
        "truncate",
        "unique",
        "upper",
        "urlencode",
        "wordcount",
        "wordwrap",
    ]
)  # left out: random (not deterministic), center/indent/format (unbounded output), pprint,
# urlize, xmlattr, safe, forceescape (HTML-only); replace is re-implemented with a bound


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise SecurityError(f"range() of more than {MAX_RANGE:,} numbers")
    charge(len(numbers))
    return numbers


def _new_dict(*args: Any, **kwargs: Any) -> dict[Any, Any]:
    """``dict(...)`` for templates: a function, so that ``dict.update`` cannot be reached."""
    value: dict[Any, Any] = checked_value(dict(*args, **kwargs), "dict()")
    return value


def _new_namespace(*args: Any, **kwargs: Any) -> Namespace:
    """``namespace(...)``, its size bounded like a mapping's."""
    value: Namespace = checked_value(Namespace(*args, **kwargs), "namespace()")
    return value


def _bounded_replace(value: Any, old: str, new: str, count: int | None = None) -> str:
    check_text_size(value, "replace()")
    text, old, new = str(value), str(old), str(new)
    hits = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        hits = min(hits, count)
    size = len(text) + hits * (len(new) - len(old))
    if size > MAX_VALUE_CHARS:
        raise too_big("replace()")
    charge(size)
    return text.replace(old, new, -1 if count is None else count)


@pass_eval_context
def _bounded_join(
    eval_ctx: EvalContext, value: Iterable[Any], d: Any = "", attribute: Any = None
) -> str:
    """``join``: each item's size checked before it becomes text, the total kept bounded."""
    if attribute is not None:
        value = map(make_attrgetter(eval_ctx.environment, attribute), value)
    check_text_size(d, "join")
    separator = str(d)
    parts: list[str] = []
    total = 0
    for item in value:
        check_text_size(item, "join", MAX_VALUE_CHARS - total)
        text = str(item)  # never longer than 26 characters per item of size
        total += len(text) + (len(separator) if parts else 0)
        if total > MAX_VALUE_CHARS:
            raise too_big("join")
        parts.append(text)
    return separator.join(parts)


_TEXT_FILTERS = frozenset(
    {
        "capitalize",
        "e",
        "escape",
        "filesizeformat",
        "float",
        "int",
        "lower",
        "string",
        "striptags",
        "title",
        "tojson",
        "trim",
        "truncate",
        "upper",
        "urlencode",
        "wordcount",
        "wordwrap",
    }
)
"""Filters that turn their whole input into text (a list or mapping by its ``str``)."""


_PER_ITEM_COST = {
    "dictsort": 5,
    "groupby": 5,
    "map": 5,
    "max": 2,
    "min": 2,
    "reject": 5,
    "rejectattr": 5,
    "select": 5,
    "selectattr": 5,
    "sort": 5,
    "striptags": 5,
    "sum": 2,
    "title": 10,
    "unique": 5,
    "wordwrap": 20,
}
"""Filters that run Python code per item or character (a key, a test, a regular
expression, ``textwrap``): what each item of their input costs the work budget, in
units of one item walked, as ``benchmarks/bench_sandbox.py`` measures them."""


def _checked(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """A filter whose input and amplifying arguments are checked first, its result after,
    and which draws what it works on from the render's budget."""
    position = 1 if getattr(original, "jinja_pass_arg", None) is not None else 0
    per_item = _PER_ITEM_COST.get(name, 0)

    @functools.wraps(original)  # keeps Jinja's pass_context/pass_environment marker
    def checked(*args: Any, **kwargs: Any) -> Any:
        value = args[position] if len(args) > position else None
        if name in _TEXT_FILTERS:
            check_text_size(value, f"the filter {name!r}")
        items = len(value) if per_item and isinstance(value, str | list | tuple | dict) else 0
        charge(1 + per_item * items)
        _check_filter_arguments(name, args, kwargs)
        return _checked_result(name, original(*args, **kwargs))

    return checked


def _checked_result(what: str, result: Any) -> Any:
    """A filter's or a method's result: text and sequences by their length (their items
    are values already bounded), mappings and namespaces by their size."""
    if isinstance(result, str | list | tuple):
        if len(result) > MAX_VALUE_CHARS:
            raise too_big(what if what.startswith("a ") else f"the filter {what!r}")
        charge(len(result))
    elif isinstance(result, dict | Namespace):
        checked_value(result, what)
    return result


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], position: int, name: str) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[position] if len(args) > position else None


def _check_filter_arguments(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    # positions count Jinja's own first argument (eval context or environment) where passed
    if name == "batch":
        linecount = _argument(args, kwargs, 1, "linecount")
        if isinstance(linecount, int) and linecount > MAX_RANGE:
            raise SecurityError(f"batch() of more than {MAX_RANGE:,} items")
        fill = _argument(args, kwargs, 2, "fill_with")
        if (
            fill is not None
            and isinstance(linecount, int)
            and (size_of(fill) + 1) * linecount > MAX_VALUE_CHARS
        ):
            raise too_big("batch()")
    elif name == "tojson":
        indent = _argument(args, kwargs, 2, "indent")
        if isinstance(indent, int) and indent > 8:
            raise SecurityError("tojson() indents by at most 8")
    elif name == "wordwrap":
        wrapstring = _argument(args, kwargs, 4, "wrapstring")
        if isinstance(wrapstring, str) and len(wrapstring) > 8:
            raise SecurityError("wordwrap() wraps with at most 8 characters")
    elif name == "sum":
        start = _argument(args, kwargs, 3, "start")
        if start is not None and not isinstance(start, int | float):
            raise SecurityError("sum() starts from a number")
    elif name == "truncate":
        end = _argument(args, kwargs, 3, "end")
        if end is not None:
            check_text_size(end, "truncate()")


def _sequence_size(value: Any) -> int | None:
    if isinstance(value, str | list | tuple):
        return size_of(value)
    return None


class _Sandbox(ImmutableSandboxedEnvironment):
    """No mutation, no private attributes, bounded operators, output is chat text."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr in FORBIDDEN_ATTRIBUTES or isinstance(obj, type):
            return False  # a class's attributes are its unbound methods: dict.update(...)
        if isinstance(obj, str) and callable(value) and attr not in _SAFE_STR_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> None:
        """Never hand out ``str.format`` (Jinja would, before asking is_safe_attribute)."""
        return

    def getattr(self, obj: Any, attribute: str) -> Any:
        """Keys before attributes for plain dicts, so a variable called ``items`` reads."""
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Any call (a method, ``dict()``, ``namespace()``): what it works on and what it
        builds are charged, and what it builds is bounded."""
        if type(__obj) is LoopBudget:  # the rewrite's own, once per loop
            return __obj(*args)
        owner = getattr(__obj, "__self__", None)
        # a method walks its object (a str's text), a call may walk its arguments
        # (loop.changed compares them with the last ones)
        charge_walk(owner if isinstance(owner, str) else None, *args, *kwargs.values())
        result = super().call(__context, __obj, *args, **kwargs)
        return _checked_result("a call", result)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > MAX_POWER_EXPONENT:
                raise SecurityError(f"exponent larger than {MAX_POWER_EXPONENT}")
            if isinstance(left, int) and left.bit_length() * abs(right) > MAX_POWER_BITS:
                raise SecurityError(f"power larger than {MAX_POWER_BITS:,} bits")
        elif operator == "*":
            both_int = isinstance(left, int) and isinstance(right, int)
            if both_int and left.bit_length() + right.bit_length() > MAX_POWER_BITS:
                raise SecurityError(f"product larger than {MAX_POWER_BITS:,} bits")
            for sequence, times in ((left, right), (right, left)):
                size = _sequence_size(sequence)
                if size is not None and isinstance(times, int):
                    if size * times > MAX_VALUE_CHARS:
                        raise too_big("*")
                    charge(max(size * times, 0))
        elif operator == "+":
            left_size, right_size = _sequence_size(left), _sequence_size(right)
            if left_size is not None and right_size is not None:
                if left_size + right_size > MAX_VALUE_CHARS:
                    raise too_big("+")
                charge(left_size + right_size)
        elif operator == "%" and isinstance(left, str):
            raise SecurityError("% formatting of text is not available; use ~ instead")
        return super().call_binop(context, operator, left, right)


_PRINTABLE = (str, int, float, bool, list, tuple, dict, type(None))
_ATOMS = frozenset({int, float, bool, type(None)})


def _plain_output(value: Any) -> Any:
    """What ``{{ ... }}`` may print: data, never a function, class or other machinery;
    and never more than the render's output limit (the text of a value is never
    shorter than its size, so the size is checked before the text is built)."""
    kind = type(value)
    if kind is str:
        charge(len(value))  # the render checks the output's length as it goes
        return value
    if kind in _ATOMS or isinstance(value, Undefined):
        return value
    if not isinstance(value, _PRINTABLE):
        raise SecurityError("a template prints data only (text, numbers, lists, mappings)")
    limit = output_limit() or MAX_VALUE_CHARS
    if not isinstance(value, str) and size_of(value, limit) > limit:
        raise SecurityError(f"a value printed would exceed {limit:,} characters")
    check_text_size(value, "printing")
    return value


sandbox = _Sandbox(
    undefined=StrictUndefined, autoescape=False, optimized=False, finalize=_plain_output
)
"""The shared environment. Do not add globals to it: pass the context per render.

``optimized=False``: Jinja's compile-time constant folding would run user
expressions while compiling, outside every bound checked at render time.
"""
sandbox.globals = {"range": _bounded_range, "dict": _new_dict, "namespace": _new_namespace}
sandbox.filters = {name: _checked(name, sandbox.filters[name]) for name in _SAFE_FILTERS}
sandbox.filters["replace"] = _bounded_replace
sandbox.filters["join"] = _checked("join", _bounded_join)
sandbox.filters.update(HELPER_FILTERS)
sandbox.tests = {
    name: charged_test(name, cast(Callable[..., Any], test)) for name, test in sandbox.tests.items()
}
