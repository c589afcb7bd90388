"""Replies by a language model: fluid text (streamed when asked) and strict choices.

:class:`ModelComposer` is a :class:`~parlant_runtime.engine.compose.ResponseGenerator`
and a :class:`~parlant_runtime.engine.compose.CannedChooser`:

- fluid: a canned response marked ``requiresExactMatch`` that is eligible is sent as
  it is, without asking the model (a compliance text is never rephrased); otherwise
  the model writes one message per part (:func:`~parlant_runtime.llm.prompts.reply_request`).
  With a token sink the answer is streamed, part by part.
- strict: the model picks, per part, one eligible canned response or none
  (:func:`~parlant_runtime.llm.prompts.choose_request`); the runtime sends the chosen
  responses' own texts.

A model that fails makes the composer raise
:class:`~parlant_runtime.llm.port.LanguageModelError` (with the tokens spent): the
runtime records it and sends its built-in reply instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from parlant_runtime.engine.compose import ComposeRequest, Reply
from parlant_runtime.engine.understanding import ModelUsage, TokenSink
from parlant_runtime.llm.calls import (
    CallPolicy,
    call_model,
    model_attributes,
    record_model_call,
    usage_of,
)
from parlant_runtime.llm.port import LanguageModel, LanguageModelError, ModelRequest, ModelResponse
from parlant_runtime.llm.prompts import PART_BREAK, choose_request, reply_parts, reply_request
from parlant_runtime.telemetry import current as telemetry_now

__all__ = ["ModelComposer"]


class ModelComposer:
    """Writes or chooses replies with ``model`` (see the module docstring)."""

    def __init__(self, model: LanguageModel, *, policy: CallPolicy | None = None) -> None:
        self.model = model
        self.policy = policy or CallPolicy()

    async def compose(self, request: ComposeRequest) -> Sequence[Reply] | None:
        exact = [c for c in request.candidates if c.exact]
        if exact:
            return [Reply(c.text, "canned_response", c.name) for c in exact]
        if request.context is None:
            raise LanguageModelError("the runtime gave no turn context to compose from")
        model_request = reply_request(request, request.context)
        if request.sink is not None:
            telemetry = telemetry_now()
            attributes = model_attributes(self.model, model_request)
            with telemetry.span("parlant.model", attributes) as span:
                response, usage, errors = await self._stream(model_request, request.sink)
                record_model_call(telemetry, span, self.model, usage, ok=response is not None)
        else:
            called = await call_model(self.model, model_request, self.policy)
            response, usage, errors = called.response, called.usage, called.errors
        if response is None:
            raise LanguageModelError("; ".join(errors) or "the model did not answer", usage=usage)
        texts = reply_parts(response.text)
        names = [p.name for p in request.parts]
        replies = [
            Reply(
                text,
                "model",
                names[n] if n < len(names) else None,
                usage=usage if n == 0 else None,
                errors=errors if n == 0 else (),
            )
            for n, text in enumerate(texts)
        ]
        if not replies:  # said nothing: still count what it cost
            raise LanguageModelError(f"{self.model.name} answered an empty reply")
        return replies

    async def _stream(
        self, request: ModelRequest, sink: TokenSink
    ) -> tuple[ModelResponse | None, ModelUsage, tuple[str, ...]]:
        """One streamed attempt (a stream already shown cannot be taken back and retried)."""
        splitter = _Splitter(sink)
        final: ModelResponse | None = None
        try:
            async with asyncio.timeout(self.policy.timeout):
                async for piece in self.model.stream(request):
                    if isinstance(piece, ModelResponse):
                        final = piece
                    else:
                        await splitter.feed(piece)
                await splitter.close()
        except TimeoutError:
            return None, ModelUsage(), (f"{self.model.name}: no whole reply within the timeout",)
        except LanguageModelError as exc:
            return None, ModelUsage(), (f"{self.model.name} (reply): {exc}",)
        if final is None:
            return None, ModelUsage(), (f"{self.model.name}: the stream ended without a reply",)
        return final, usage_of(self.model, final), ()

    async def choose(self, request: ComposeRequest) -> Sequence[Reply]:
        if request.context is None:
            raise LanguageModelError("the runtime gave no turn context to choose from")
        model_request, parts = choose_request(request, request.context)
        called = await call_model(self.model, model_request, self.policy)
        if called.response is None:
            message = "; ".join(called.errors) or "the model did not answer"
            raise LanguageModelError(message, usage=called.usage)
        ids = {f"r{n}": c for n, c in enumerate(request.candidates, start=1)}
        replies: list[Reply] = []
        usage: ModelUsage | None = called.usage
        for choice in called.response.data.get("choices", []):
            candidate = ids.get(choice["response"])
            if candidate is None:
                continue
            fields = choice.get("fields")
            replies.append(
                Reply(
                    candidate.text,
                    "canned_response",
                    candidate.name,
                    usage=usage,
                    errors=called.errors if usage is not None else (),
                    fields=dict(fields) if isinstance(fields, dict) else None,
                )
            )
            usage = None
        if usage is not None:  # nothing chosen: the cost still counts, on an empty reply
            replies.append(Reply("", "none", usage=usage, errors=called.errors))
        del parts
        return replies


class _Splitter:
    """Feeds streamed text to the sink part by part, hiding the ``---`` lines between.

    A line is held back only while it may still be a ``---`` line."""

    def __init__(self, sink: TokenSink) -> None:
        self.sink = sink
        self.part = 0
        self.line = ""
        self.mid_line = False
        """Part of the current line was sent: it cannot be a break any more."""
        self.started = False

    async def feed(self, text: str) -> None:
        out = ""
        for char in text:
            if self.mid_line:
                out += char
                if char == "\n":
                    self.mid_line = False
                continue
            self.line += char
            if char == "\n":
                if self.line.strip() == PART_BREAK:
                    await self._emit(out)
                    out = ""
                    self.part += 1
                    self.started = False
                else:
                    out += self.line
                self.line = ""
            elif self.line.strip() and not PART_BREAK.startswith(self.line.strip()):
                out += self.line
                self.line = ""
                self.mid_line = True
        await self._emit(out)

    async def _emit(self, text: str) -> None:
        if not text:
            return
        if not self.started:
            text = text.lstrip()
            if not text:
                return
            self.started = True
        await self.sink(self.part, text)

    async def close(self) -> None:
        if self.line.strip() != PART_BREAK:
            await self._emit(self.line)
        self.line = ""
