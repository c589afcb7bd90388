"""The fast analysis path agrees with Jinja on every text it accepts (differential test),
and texts that share its cheap key share its analysis."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from parlant_runtime.sandbox import clear_caches
from parlant_runtime.sandbox._quick import quick_analyse, quick_key
from parlant_runtime.sandbox.analysis import (
    _analyse_with_jinja,
    _from_quick,
    analyse,
    analyse_text,
)
from parlant_runtime.sandbox.environment import FORBIDDEN_ATTRIBUTES as _FORBIDDEN_ATTRIBUTES

atoms = st.sampled_from(
    [
        "vars.day", "vars.n", "vars.a.b", "tool.check.free", "message", "state.name",
        "unknown", "vars._secret", "x.mro", "1", "2.5", "'text'", '"q"', "true", "none",
        "range", "vars.__class__",
    ]
)  # fmt: skip
joiners = st.sampled_from(
    [" and ", " or ", " == ", " != ", " > ", " <= ", " in ", " not in ", " is defined",
     " is not defined", " is none", " is divisibleby 3", " | length", " ~ ", " + ", ") ", " (",
     "not ", " is defined and ", "."]
)  # fmt: skip
expressions = st.builds(
    lambda first, rest: first + "".join(j + a for j, a in rest),
    atoms,
    st.lists(st.tuples(joiners, atoms), max_size=4),
)
templates = st.builds(
    "".join,
    st.lists(
        st.one_of(
            st.sampled_from(["Hello ", " }} ", "{ ", "done.", "\n"]),
            expressions.map(lambda e: "{{ " + e + " }}"),
            st.sampled_from(["{{ ", "{{- vars.a }}", "{% if x %}", "{# c #}"]),
        ),
        max_size=4,
    ),
)


@given(expressions)
@example("(vars.day) is defined")
@example("1 < vars.day is defined")
@example("vars.a > 1 is defined")
def test_quick_expression_analysis_agrees_with_jinja(text: str) -> None:
    quick = quick_analyse(text, expression=True, forbidden=_FORBIDDEN_ATTRIBUTES)
    if quick is not None:
        assert _from_quick(quick) == _analyse_with_jinja(text, expression=True)


@given(templates)
def test_quick_template_analysis_agrees_with_jinja(text: str) -> None:
    quick = quick_analyse(text, expression=False, forbidden=_FORBIDDEN_ATTRIBUTES)
    if quick is not None:
        assert _from_quick(quick) == _analyse_with_jinja(text, expression=False)


def test_the_fast_path_takes_the_common_shapes() -> None:
    for text in ["vars.day is defined", "vars.n > 3 and not vars.ok", "'x' in vars.tags"]:
        assert quick_analyse(text, expression=True, forbidden=_FORBIDDEN_ATTRIBUTES)
    assert quick_analyse("Booked for {{ vars.day }}.", expression=False, forbidden=frozenset())


def test_the_fast_path_declines_what_it_does_not_know() -> None:
    for text in ["vars.a | default(1)", "mentions('card')", "true", "vars.a is divisibleby 3"]:
        assert quick_analyse(text, expression=True, forbidden=_FORBIDDEN_ATTRIBUTES) is None
    assert analyse("true", expression=True).constant is True


def _respaced(text: str, spaces: list[str], numbers: list[int]) -> str:
    """``text`` with other whitespace between its words and other numbers for its words
    of digits: what :func:`quick_key` leaves out."""
    words = text.split()
    for index, word in enumerate(words):
        if word.isdigit() and word.isascii() and numbers:
            words[index] = str(numbers[index % len(numbers)])
    out = spaces[0] if spaces else ""
    for index, word in enumerate(words):
        out += word + (spaces[(index + 1) % len(spaces)] if spaces else " ")
    return out


spacing = st.lists(st.sampled_from([" ", "  ", "\t", "\n ", " \r\n"]), min_size=1, max_size=3)


@given(expressions, spacing, st.lists(st.integers(0, 10**6), max_size=3))
@example("vars.n > 3", [" "], [41])
@example("vars.n > 3 and vars.x1 is defined", ["  "], [7])
def test_expressions_that_share_a_quick_key_share_the_fast_analysis(
    text: str, spaces: list[str], numbers: list[int]
) -> None:
    other = _respaced(text, spaces, numbers)
    assert quick_key(text, expression=True) == quick_key(other, expression=True) or (
        quick_key(text, expression=True) is None
    )
    if quick_key(text, expression=True) is None:
        return
    first = quick_analyse(text, expression=True, forbidden=_FORBIDDEN_ATTRIBUTES)
    second = quick_analyse(other, expression=True, forbidden=_FORBIDDEN_ATTRIBUTES)
    assert (first is None) == (second is None)
    if first is not None and second is not None:
        assert _from_quick(first) == _from_quick(second)


@given(templates, st.sampled_from(["", "Hello ", "Step 41: ", "}} ", "a\n"]), st.text(max_size=8))
def test_templates_that_share_a_quick_key_share_the_fast_analysis(
    text: str, before: str, after: str
) -> None:
    key = quick_key(text, expression=False)
    if key is None:
        return
    start = text.find("{{")
    end = text.find("}}", start + 2) + 2
    other = before + text[start:end] + after.replace("{", "(")
    if quick_key(other, expression=False) != key:
        return  # the new text around the tag holds tags of its own
    first = quick_analyse(text, expression=False, forbidden=_FORBIDDEN_ATTRIBUTES)
    second = quick_analyse(other, expression=False, forbidden=_FORBIDDEN_ATTRIBUTES)
    assert (first is None) == (second is None)
    if first is not None and second is not None:
        assert _from_quick(first) == _from_quick(second)


def test_texts_that_share_a_quick_key_share_one_analysis() -> None:
    clear_caches()
    first = analyse_text("Step 1: {{ vars.name }}, go on?", expression=False)
    assert analyse_text("Step 2: {{ vars.name }}, go on?", expression=False) is first
    assert analyse_text("vars.n > 1 and vars.ok is defined", expression=True) is analyse_text(
        "vars.n >  22 and vars.ok is defined", expression=True
    )
    # outside the fast path nothing is kept by key: Jinja's words may depend on the rest
    assert quick_key("{{ vars.a | upper }}", expression=False) is not None
    assert analyse_text("{{ vars.a | upper }}", expression=False) == analyse(
        "{{ vars.a | upper }}", expression=False
    )
