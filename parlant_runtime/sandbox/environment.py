"""The sandboxed Jinja environment itself: what templates may touch, and every bound.

Everything a template can build is bounded before it is built where that is
possible (``*``, ``+``, ``**``, ``replace``, ``join``, ``range``) and checked right
after otherwise (other filters); loops draw from a per-render iteration budget
(see :mod:`parlant_runtime.sandbox.compiled`). Limits are module constants so that
docs and tests name them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import StrictUndefined, Undefined
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import (
    UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
    UNSAFE_COROUTINE_ATTRIBUTES,
    UNSAFE_GENERATOR_ATTRIBUTES,
    ImmutableSandboxedEnvironment,
)
from jinja2.utils import Namespace

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
    "LoopBudget",
    "bounded_concat",
    "sandbox",
]

MAX_OUTPUT_CHARS = 20_000
"""Longest text a template may render; longer output is an error, never truncated."""

MAX_VALUE_CHARS = 100_000
"""Longest string or sequence one operation inside a template may build."""

MAX_ITERATIONS = 10_000
"""Most loop iterations one render may run, all loops together."""

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


def _too_big(what: str) -> SecurityError:
    return SecurityError(f"{what} would build more than {MAX_VALUE_CHARS:,} items")


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | list | tuple) else None


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise SecurityError(f"range() of more than {MAX_RANGE:,} numbers")
    return numbers


def _new_dict(*args: Any, **kwargs: Any) -> dict[Any, Any]:
    """``dict(...)`` for templates: a function, so that ``dict.update`` cannot be reached."""
    return dict(*args, **kwargs)


def _bounded_replace(value: Any, old: str, new: str, count: int | None = None) -> str:
    text, old, new = str(value), str(old), str(new)
    hits = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        hits = min(hits, count)
    if len(text) + hits * (len(new) - len(old)) > MAX_VALUE_CHARS:
        raise _too_big("replace()")
    return text.replace(old, new, -1 if count is None else count)


def bounded_concat(parts: Iterable[Any]) -> str:
    """The ``~`` operator, with its result size checked before it is built."""
    texts = [str(part) for part in parts]
    if sum(map(len, texts)) > MAX_VALUE_CHARS:
        raise _too_big("~")
    return "".join(texts)


class LoopBudget:
    """Counts loop iterations of one render; every ``for`` loop draws from it."""

    def __init__(self) -> None:
        self.left = MAX_ITERATIONS

    def __call__(self, iterable: Any) -> Iterator[Any]:
        for item in iterable:
            self.left -= 1
            if self.left < 0:
                raise SecurityError(f"loops ran more than {MAX_ITERATIONS:,} times")
            yield item


def _checked(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """A filter whose amplifying arguments are checked first and whose result after."""

    @functools.wraps(original)  # keeps Jinja's pass_context/pass_environment marker
    def checked(*args: Any, **kwargs: Any) -> Any:
        _check_filter_arguments(name, args, kwargs)
        result = original(*args, **kwargs)
        size = _size(result)
        if size is not None and size > MAX_VALUE_CHARS:
            raise _too_big(f"the filter {name!r}")
        return result

    return checked


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], position: int, name: str) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[position] if len(args) > position else None


def _check_filter_arguments(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    # positions count Jinja's own first argument (eval context or environment) where passed
    if name == "join":
        items, separator = _argument(args, kwargs, 1, "value"), _argument(args, kwargs, 2, "d")
        if isinstance(items, list | tuple) and isinstance(separator, str):
            estimate = len(separator) * len(items) + sum(len(str(item)) for item in items)
            if estimate > MAX_VALUE_CHARS:
                raise _too_big("join")
    elif name == "batch":
        linecount = _argument(args, kwargs, 1, "linecount")
        if isinstance(linecount, int) and linecount > MAX_RANGE:
            raise SecurityError(f"batch() of more than {MAX_RANGE:,} items")
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
                size = _size(sequence)
                if size is not None and isinstance(times, int) and size * times > MAX_VALUE_CHARS:
                    raise _too_big("*")
        elif operator == "+":
            left_size, right_size = _size(left), _size(right)
            if (
                left_size is not None
                and right_size is not None
                and (left_size + right_size > MAX_VALUE_CHARS)
            ):
                raise _too_big("+")
        elif operator == "%" and isinstance(left, str):
            raise SecurityError("% formatting of text is not available; use ~ instead")
        return super().call_binop(context, operator, left, right)


_PRINTABLE = (str, int, float, bool, list, tuple, dict, type(None))


def _plain_output(value: Any) -> Any:
    """What ``{{ ... }}`` may print: data, never a function, class or other machinery."""
    if isinstance(value, (*_PRINTABLE, Undefined)):
        return value
    raise SecurityError("a template prints data only (text, numbers, lists, mappings)")


sandbox = _Sandbox(
    undefined=StrictUndefined, autoescape=False, optimized=False, finalize=_plain_output
)
"""The shared environment. Do not add globals to it: pass the context per render.

``optimized=False``: Jinja's compile-time constant folding would run user
expressions while compiling, outside every bound checked at render time.
"""
sandbox.globals = {"range": _bounded_range, "dict": _new_dict, "namespace": Namespace}
sandbox.filters = {name: _checked(name, sandbox.filters[name]) for name in _SAFE_FILTERS}
sandbox.filters["replace"] = _bounded_replace
