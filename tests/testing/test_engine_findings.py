"""Engine behaviour found while writing the example conversation tests.

Each test states what a user of the example bundles expects. They were pinned as
strict xfails while the engine got them wrong; the engine now does what they say,
so they stay as regression tests (a new finding is added here as a strict xfail
until it is fixed; its matching case can then join ``examples/tests``). The root
cause of the first is also tested, on a made-up bundle, in
``tests/engine/test_hostile.py``; this one shows it on a customer of an example bundle.
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
