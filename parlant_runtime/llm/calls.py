"""Calling a model without letting it break the turn: timeouts, retries, schema checks.

:func:`call_model` makes one request under a :class:`CallPolicy`: each attempt is
bounded by ``timeout`` seconds; a retryable failure (a 429 or 5xx, a timeout, a
connection error, an answer that is not JSON or breaks the schema) is tried again up
to ``retries`` times, waiting ``backoff * 2**n`` seconds (or the provider's
``retry-after``), at most ``max_backoff``. It never raises for what the model does: it
returns the answer or ``None``, the tokens spent (failed attempts included) and what
went wrong, which the runtime records as error events. The turn's overall budget is the
runtime's (``Runtime(turn_budget=...)``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from parlant_runtime.engine.understanding import ModelUsage
from parlant_runtime.llm.port import LanguageModel, LanguageModelError, ModelRequest, ModelResponse
from parlant_runtime.telemetry import SpanLike, Telemetry
from parlant_runtime.telemetry import current as telemetry_now

__all__ = [
    "CallPolicy",
    "Called",
    "call_model",
    "model_attributes",
    "record_model_call",
    "schema_problem",
    "usage_of",
]

_log = logging.getLogger("parlant_runtime.llm")


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """How long to wait and how often to try (see the module docstring)."""

    timeout: float = 20.0
    retries: int = 2
    backoff: float = 0.5
    max_backoff: float = 8.0

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.retries < 0 or self.backoff < 0 or self.max_backoff < 0:
            raise LanguageModelError(f"a call policy needs positive times and retries >= 0: {self}")


@dataclass(frozen=True, slots=True)
class Called:
    """The outcome of :func:`call_model`."""

    response: ModelResponse | None
    usage: ModelUsage
    errors: tuple[str, ...] = field(default_factory=tuple)


def usage_of(model: LanguageModel, response: ModelResponse) -> ModelUsage:
    """The tokens of one answer and, when the model has a price, their cost."""
    price = model.price
    cost = price.cost_micros(response.input_tokens, response.output_tokens) if price else None
    return ModelUsage(1, response.input_tokens, response.output_tokens, cost, (model.name,))


def schema_problem(schema: Mapping[str, Any], data: Any) -> str | None:
    """Why ``data`` breaks ``schema`` (the first problem), or ``None``."""
    errors = sorted(Draft202012Validator(dict(schema)).iter_errors(data), key=lambda e: e.path)
    if not errors:
        return None
    where = "/".join(str(p) for p in errors[0].absolute_path) or "the answer"
    return f"{where}: {errors[0].message[:200]}"


async def call_model(
    model: LanguageModel, request: ModelRequest, policy: CallPolicy | None = None
) -> Called:
    """One request, retried as the policy says (see the module docstring).

    The call is a ``parlant.model`` span with the tokens the model reported, counted in
    ``parlant.model.tokens`` (:mod:`parlant_runtime.telemetry`); a failed attempt is
    logged on ``parlant_runtime.llm`` at INFO (the turn it fails logs the WARNING, with
    the session).
    """
    telemetry = telemetry_now()
    with telemetry.span("parlant.model", model_attributes(model, request)) as span:
        called = await _call_model(model, request, policy or CallPolicy())
        record_model_call(telemetry, span, model, called.usage, ok=called.response is not None)
    return called


def model_attributes(model: LanguageModel, request: ModelRequest) -> dict[str, str]:
    """The attributes of a ``parlant.model`` span (names only, never the prompt)."""
    return {"gen_ai.request.model": model.name, "parlant.model.purpose": request.purpose}


def record_model_call(
    telemetry: Telemetry, span: SpanLike, model: LanguageModel, usage: ModelUsage, *, ok: bool
) -> None:
    """Put a model call's outcome and tokens on its span and in the token counter."""
    if not telemetry.on:
        return
    span.set_attribute("parlant.model.ok", ok)
    span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
    for kind, tokens in (("input", usage.input_tokens), ("output", usage.output_tokens)):
        if tokens:
            telemetry.model_tokens.add(
                tokens, {"gen_ai.request.model": model.name, "gen_ai.token.type": kind}
            )


async def _call_model(model: LanguageModel, request: ModelRequest, policy: CallPolicy) -> Called:
    usage = ModelUsage()
    errors: list[str] = []
    for attempt in range(policy.retries + 1):
        wait: float | None = None
        try:
            response = await asyncio.wait_for(model.complete(request), policy.timeout)
        except TimeoutError:
            problem, retryable = f"no answer within {policy.timeout:g} s", True
        except LanguageModelError as exc:
            problem, retryable, wait = str(exc), exc.retryable, exc.retry_after
        except Exception as exc:  # an adapter's own bug: reported, never raised into the turn
            problem, retryable = f"{type(exc).__name__}: {exc}", False
        else:
            usage = usage + usage_of(model, response)
            if response.error is not None:
                problem, retryable = response.error, True
            elif request.schema is not None and (
                found := schema_problem(request.schema, response.data)
            ):
                problem, retryable = f"the answer breaks its schema ({found})", True
            else:
                return Called(response, usage, tuple(errors))
        errors.append(f"{model.name} ({request.purpose}, attempt {attempt + 1}): {problem}")
        if not retryable or attempt == policy.retries:
            _log.info("model call given up: %s", errors[-1])
            break
        _log.info("model call failed, retrying: %s", errors[-1])
        delay = policy.backoff * 2**attempt if wait is None else wait
        await asyncio.sleep(min(max(delay, 0.0), policy.max_backoff))
    return Called(None, usage, tuple(errors))
