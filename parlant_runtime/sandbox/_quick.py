"""A fast path for the static analysis of simple templates and expressions.

Validating a 10,000-state journey means analysing tens of thousands of prompts and
conditions, and Jinja's lexer, parser and node walk cost about 100 us each. Most of
those texts are simple: ``Booked for {{ vars.day }}``, ``{{ vars.n > 3 and vars.ok
is defined }}``. This module reads exactly that subset (dotted names, literals,
comparisons, ``and``/``or``/``not``, ``in``, presence tests, parentheses) in a few
microseconds, and answers ``None`` for anything else, which then goes through
Jinja. Everything it accepts, Jinja parses to the same meaning (a differential test,
``tests/test_quick_analysis.py``, holds it to that).

It is a second parser, so it has to earn its place: ``benchmarks/bench_analysis.py``
measures it against Jinja alone (remembered per text, as :func:`analyse` would be
without it), caches cleared before each run. On a busy 2-core machine (medians of 5)::

                                               fast path      Jinja   ratio
    analyse, the example agents' 75 texts        16.5 ms    69.5 ms    4.2x
    analyse, a 5,000-state journey's 9,398 texts  154 ms   9,124 ms     59x
    validate_bundle, a 1,000-state journey        141 ms   1,120 ms    7.9x
    validate_bundle, a 5,000-state journey        997 ms   4,024 ms    4.0x

62 of the examples' 75 hand-written texts take the fast path, and every text of the
generated journey: kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "QuickResult",
    "analyse_shape",
    "expression_key",
    "quick_analyse",
    "quick_key",
    "shape_of",
]

_TOKEN = re.compile(
    r"""
      (?P<number>\d+(?:\.\d+)?(?![\w.]))
    | (?P<string>'[^'\\]*(?:\\.[^'\\]*)*'|"[^"\\]*(?:\\.[^"\\]*)*")
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>==|!=|>=|<=|>|<|\(|\)|\.)
    | (?P<space>\s+)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_LITERAL = re.compile(
    r"""'[^'\\]*(?:\\.[^'\\]*)*'|"[^"\\]*(?:\\.[^"\\]*)*"|(?<![\w.])\d+(?:\.\d+)?(?![\w.])"""
)
_COMPARISONS = frozenset({"==", "!=", ">=", "<=", ">", "<"})
_LITERAL_NAMES = frozenset({"true", "false", "none", "True", "False", "None"})
_PRESENCE_TESTS = frozenset({"defined", "undefined", "none"})
_KEYWORDS = frozenset({"and", "or", "not", "is", "in", "if", "else"}) | _LITERAL_NAMES


@dataclass
class QuickResult:
    """What the fast path found: reads, names, tools and the first forbidden attribute."""

    reads: list[tuple[str, bool]] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    tools: list[str] = field(default_factory=list)
    forbidden: str | None = None


class _Unsupported(Exception):
    """Outside the subset: let Jinja decide."""


class _Parser:
    """Recursive descent over the token list; raises :class:`_Unsupported` at once."""

    def __init__(self, tokens: list[tuple[str, str]], forbidden: frozenset[str]) -> None:
        self.tokens = tokens
        self.position = 0
        self.forbidden = forbidden
        self.result = QuickResult()
        self.name_count = 0

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise _Unsupported
        self.position += 1
        return token

    def accept(self, value: str) -> bool:
        token = self.peek()
        if token is not None and token[1] == value and token[0] in ("op", "name"):
            self.position += 1
            return True
        return False

    def expression(self) -> None:
        self.conjunction()
        while self.accept("or"):
            self.conjunction()

    def conjunction(self) -> None:
        self.negation()
        while self.accept("and"):
            self.negation()

    def negation(self) -> None:
        if self.accept("not"):
            self.negation()
        else:
            self.comparison()

    def comparison(self) -> None:
        names_before = self.name_count
        self._comparison()
        if self.name_count == names_before:
            raise _Unsupported  # literals only: Jinja folds them, and folding decides truth

    def _comparison(self) -> None:
        read = self.operand()
        operators = 0
        while True:
            if operators > 1:
                raise _Unsupported  # chained comparisons: Jinja may fold the literal part
            token = self.peek()
            if token is None:
                return
            kind, value = token
            if (kind == "op" and value in _COMPARISONS) or (value == "in" and kind == "name"):
                self.position += 1
                operators += 1
                read = self.operand()
            elif value == "not" and kind == "name" and self._next_is("in"):
                self.position += 2
                operators += 1
                read = self.operand()
            elif value == "is" and kind == "name":
                if self.tokens[self.position - 1] == ("op", ")"):
                    raise _Unsupported  # a test on a parenthesised expression: Jinja's call
                self.position += 1
                self.accept("not")
                test = self.take()
                if test[0] != "name" or test[1] not in _PRESENCE_TESTS:
                    raise _Unsupported
                if read is not None:
                    self.result.reads[read] = (self.result.reads[read][0], True)
                read = None
            else:
                return

    def _next_is(self, value: str) -> bool:
        token = self.peek(1)
        return token is not None and token == ("name", value)

    def operand(self) -> int | None:
        """Parse one operand; for a ``vars.<name>`` read, the index of that read."""
        kind, value = self.take()
        if kind in ("number", "string"):
            return None
        if kind == "op" and value == "(":
            self.expression()
            if not self.accept(")"):
                raise _Unsupported
            return None
        if kind != "name" or (value in _KEYWORDS and value not in _LITERAL_NAMES):
            raise _Unsupported
        if value in _LITERAL_NAMES:
            return None
        if value.startswith("_"):
            raise _Unsupported  # reserved names: Jinja's path words the refusal
        path = [value]
        while self.accept("."):
            kind, name = self.take()
            if kind != "name":
                raise _Unsupported
            path.append(name)
        for attribute in path[1:]:
            if attribute.startswith("_") or attribute in self.forbidden:
                self.result.forbidden = self.result.forbidden or attribute
        self.result.names.add(value)
        self.name_count += 1
        if len(path) > 1 and value == "vars":
            self.result.reads.append((path[1], False))
            # only `vars.x is defined` guards x; `vars.x.y is defined` fails when x is missing
            return len(self.result.reads) - 1 if len(path) == 2 else None
        if len(path) > 1 and value == "tool":
            self.result.tools.append(path[1])
        return None


def _tokens(source: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(source):
        kind = match.lastgroup
        if kind == "space":
            continue
        if kind == "other" or kind is None:
            raise _Unsupported
        tokens.append((kind, match.group()))
    return tokens


def _expression(source: str, parser_result: QuickResult, forbidden: frozenset[str]) -> None:
    tokens = _tokens(source)
    if not tokens:
        raise _Unsupported
    parser = _Parser(tokens, forbidden)
    parser.result = parser_result
    parser.expression()
    if parser.position != len(tokens):
        raise _Unsupported


def shape_of(text: str, *, expression: bool) -> tuple[str, ...] | None:
    """What the analysis depends on: the expressions, with literal values blanked.

    Inside the subset, a literal's value never changes the result (only its being
    a literal does), and neither does the text around a template's tags, so texts
    of one shape share one analysis. ``None``: certainly outside the subset.
    """
    if expression:
        return ("e", _LITERAL.sub("0", text))
    if "{%" in text or "{#" in text or "{{" in _TAG.sub("", text):
        return None
    return ("t", *(_LITERAL.sub("0", inner) for inner in _TAG.findall(text)))


def quick_key(text: str, *, expression: bool) -> str | None:
    """A key cheaper to compute than :func:`shape_of`, for the common texts; ``None``
    for the others. Keys of expressions and of templates are kept apart by the caller.

    Two texts with the same key lie both inside the subset or both outside it, and
    inside it they have the same analysis, so an analysis the fast path gave for one
    is the analysis of the other. (Outside the subset Jinja decides, and its messages
    may depend on what the key leaves out, such as positions: a caller keeps an
    analysis under a key only when the fast path gave it.)

    - A template with one ``{{ ... }}`` and no other tag: the text inside the tag. The
      shape is that text with its literals blanked, so one key is one shape.
    - An expression without quotes: its words (split at whitespace) joined by one
      space, each word of ASCII digits only written ``0``. Without quotes no literal
      spans whitespace; a word of digits between whitespace is a whole number
      literal, which the shape blanks anyway; every other word is kept as it is.
      Whitespace only separates tokens, so texts with the same words give the same
      tokens. (:func:`expression_key` is this key from the words.)
    """
    if expression:
        if "'" in text or '"' in text:
            return None
        return expression_key(text.split())
    start = text.find("{{")
    end = text.find("}}", start + 2)
    if start < 0 or end < 0 or "{{" in text[end + 2 :] or "{%" in text or "{#" in text:
        return None
    return text[start + 2 : end]


def expression_key(words: list[str]) -> str:
    """:func:`quick_key` of an expression without quotes whose words are ``words``."""
    return " ".join(["0" if word.isdigit() and word.isascii() else word for word in words])


def analyse_shape(shape: tuple[str, ...], forbidden: frozenset[str]) -> QuickResult | None:
    """Analyse a shape from :func:`shape_of`; ``None`` if it lies outside the subset."""
    result = QuickResult()
    try:
        for source in shape[1:]:
            _expression(source, result, forbidden)
    except (_Unsupported, RecursionError):
        return None
    if shape[0] == "e" and not result.names:
        return None  # constant expressions: Jinja folds them and tells their truth
    return result


def quick_analyse(text: str, *, expression: bool, forbidden: frozenset[str]) -> QuickResult | None:
    """Analyse ``text`` if it lies in the simple subset, else ``None``."""
    shape = shape_of(text, expression=expression)
    return analyse_shape(shape, forbidden) if shape is not None else None
