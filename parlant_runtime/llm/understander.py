"""Conditions and extraction by a language model: one call per turn.

:class:`ModelUnderstander` is an :class:`~parlant_runtime.engine.understanding.Understander`:
it sends every pending natural-language condition of the turn and the variables the
position collects in one request (:func:`~parlant_runtime.llm.prompts.understand_request`),
checks the answer against its schema, and hands back the verdicts, rationales and
values. A model that fails (after the policy's retries) decides nothing: every
condition counts as false and nothing is collected; the errors become error events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from parlant_runtime.engine.understanding import Understanding, UnderstandRequest
from parlant_runtime.llm.calls import CallPolicy, call_model
from parlant_runtime.llm.port import LanguageModel
from parlant_runtime.llm.prompts import condition_ids, understand_request

__all__ = ["ModelUnderstander"]


class ModelUnderstander:
    """Decides conditions and reads variables with ``model`` (see the module docstring)."""

    def __init__(self, model: LanguageModel, *, policy: CallPolicy | None = None) -> None:
        self.model = model
        self.policy = policy or CallPolicy()

    async def understand(self, request: UnderstandRequest) -> Understanding:
        called = await call_model(self.model, understand_request(request), self.policy)
        if called.response is None:
            return Understanding({}, usage=called.usage, errors=called.errors)
        data: Mapping[str, Any] = called.response.data
        ids = condition_ids(request.conditions)
        holds: dict[str, bool] = {}
        rationales: dict[str, str] = {}
        for verdict in data.get("conditions", []):
            text = ids.get(verdict["id"])
            if text is not None:
                holds[text] = verdict["holds"] is True
                rationales[text] = verdict["rationale"]
        return Understanding(
            holds,
            rationales,
            dict(data.get("variables", {})),
            usage=called.usage,
            errors=called.errors,
        )

    async def evaluate(
        self, conditions: Sequence[str], *, message: str, context: Mapping[str, Any]
    ) -> Mapping[str, bool]:
        """The older evaluator protocol, for callers that use it directly (no context
        beyond the message and variables; the runtime calls :meth:`understand`)."""
        from parlant_runtime.engine.understanding import TurnContext  # noqa: PLC0415

        turn = TurnContext(
            agent_name="the assistant",
            agent_description=None,
            system_prompt=None,
            message=message,
            conversation=(),
            glossary=(),
            variables=dict(context.get("vars", {})),
            journey=None,
            state=None,
        )
        found = await self.understand(UnderstandRequest(tuple(conditions), (), turn))
        return dict(found.holds)
