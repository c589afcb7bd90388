"""The fast analysis path agrees with Jinja on every text it accepts (differential test)."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from parlant_runtime.sandbox._quick import quick_analyse
from parlant_runtime.sandbox.analysis import _analyse_with_jinja, _from_quick, analyse
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
