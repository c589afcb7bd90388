"""Engine behaviour found while writing the example conversation tests, pinned as xfail.

Each test states what a user of the example bundles would expect; it fails today
because of the engine (not of the bundle or the test runner). When the engine is
fixed the test passes, ``xfail_strict`` turns that into a failure, and the marker
must go (and the matching case can join ``examples/tests``). The root cause of the
first is also pinned, on a made-up bundle, in ``tests/engine/test_hostile.py``;
this one shows what it does to a customer of an example bundle.
"""

from __future__ import annotations

from pathlib import Path

from parlant_runtime.testing import Outcome
from tests.testing.support import EXAMPLES, one_case, run

LOST = "customer has lost their card or thinks it was stolen"


def test_a_failed_tool_state_can_be_retried_in_a_journey_that_forbids_revisits(
    tmp_path: Path,
) -> None:
    path = one_case(
        tmp_path,
        f"""
        tools:
          verify_identity: {{raises: "core banking offline"}}
        steps:
          - customer: "I've lost my card, it ends 4821"
            holds: ["{LOST}"]
            set: {{card_last_four: "4821"}}
            expect: {{state: ask_dob}}
          - customer: "12/04/1990"
            set: {{date_of_birth: "1990-04-12"}}
            expect: {{state: ask_dob, tool_calls: [verify_identity]}}
          - customer: "12/04/1990, try again please"
            expect: {{state: ask_dob, tool_calls: [verify_identity]}}
        """,
        bundle=EXAMPLES / "bank_card.yaml",
    )
    (case,) = run(path).cases
    assert case.failure is None or case.failure.step == 3  # steps 1-2 hold either way
    assert case.outcome is Outcome.PASSED, case.failure
