"""The prompts the runtime sends a model, and the JSON Schemas of the answers.

Three requests, all built from a :class:`~parlant_runtime.engine.understanding.TurnContext`
(which never holds a private variable):

- **understand** (one per turn with a customer message): every pending
  natural-language condition, numbered ``c1``, ``c2``..., and the variables to collect,
  with the conversation, glossary, variables and position as context. The answer is
  JSON: a verdict and a short rationale per condition, and the values read.
- **reply** (fluid agents): free text, one message per part (the journey step, then
  each matched guideline), parts separated by a line holding only ``---``; the
  conversation goes as chat messages, the context in the system prompt.
- **choose** (strict agents): per part, the id of one eligible canned response, or
  ``none``; the answer is JSON.

``docs/language-models.md`` shows each prompt as sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from parlant_runtime.engine.compose import Candidate, ComposeRequest, Part
from parlant_runtime.engine.understanding import TurnContext, UnderstandRequest
from parlant_runtime.llm.port import ChatMessage, ModelRequest

__all__ = [
    "PART_BREAK",
    "choose_request",
    "condition_ids",
    "reply_parts",
    "reply_request",
    "understand_request",
]

PART_BREAK = "---"
"""The line between two parts of a fluid reply."""

_UNDERSTAND_SYSTEM = """\
You are the language-understanding step of {agent}. You never write to the customer.
Read the customer's latest message in the light of the conversation before it, then:
1. For each condition listed, decide whether it holds now, and give a rationale of at
   most 20 words. A condition holds only when the conversation clearly supports it.
2. For each variable listed under "collect", give its value only when the customer
   stated it (in the latest message or earlier, if it was not yet collected); the
   value must follow the variable's JSON Schema. Leave out what was not stated.
Answer with one JSON object following the given schema, and nothing else."""

_REPLY_SYSTEM = """\
{agent_line}{system_prompt}

You write the assistant's next reply to the customer. {parts_line}
Write only the messages, in order, separated by a line holding only ---.
Never invent facts, times, prices or codes: use only what is given below.
{extra}"""

_CHOOSE_SYSTEM = """\
{agent_line}{system_prompt}

You choose the assistant's next reply from approved responses only: you never write
text. For each part listed, choose the id of the approved response that fits it best,
or "none" when no response fits that part. When the response you choose has "fields"
(shown as {{name}} in its text), give a short value for each, taken from the
conversation. Answer with one JSON object following the
given schema, and nothing else."""


def _agent(context: TurnContext) -> str:
    if context.agent_description:
        return f"{context.agent_name} ({context.agent_description})"
    return context.agent_name


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1, default=str)


def _temperature(context: TurnContext, default: float | None) -> float | None:
    return default if context.temperature is None else context.temperature / 100


def condition_ids(conditions: Sequence[str]) -> dict[str, str]:
    """``c1``, ``c2``... for each condition, in order."""
    return {f"c{n}": text for n, text in enumerate(conditions, start=1)}


def understand_request(request: UnderstandRequest) -> ModelRequest:
    """The one call of a turn that decides its conditions and reads its variables."""
    context = request.context
    ids = condition_ids(request.conditions)
    document: dict[str, Any] = {
        "assistant": {"name": context.agent_name, "instructions": context.system_prompt},
        "position": {"journey": context.journey, "state": context.state},
        "glossary": list(context.glossary),
        "variables": dict(context.variables),
        "conversation": [{"role": u.role, "text": u.text} for u in context.conversation],
        "latest_message": context.message,
        "conditions": [{"id": cid, "text": text} for cid, text in ids.items()],
        "collect": [
            {"name": c.name, "description": c.description, "schema": dict(c.schema)}
            for c in request.collect
        ],
    }
    schema = {
        "type": "object",
        "properties": {
            "conditions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "enum": list(ids)} if ids else {"type": "string"},
                        "holds": {"type": "boolean"},
                        "rationale": {"type": "string"},
                    },
                    "required": ["id", "holds", "rationale"],
                    "additionalProperties": False,
                },
            },
            "variables": {
                "type": "object",
                "properties": {c.name: {} for c in request.collect},
                "additionalProperties": False,
            },
        },
        "required": ["conditions", "variables"],
        "additionalProperties": False,
    }
    return ModelRequest(
        system=_UNDERSTAND_SYSTEM.format(agent=_agent(context)),
        messages=(ChatMessage("user", _dump(document)),),
        schema=schema,
        schema_name="understanding",
        temperature=0.0,
        max_tokens=min(4096, 200 + 60 * len(ids) + 100 * len(request.collect)),
        purpose="understand",
    )


def _context_block(context: TurnContext, candidates: Sequence[Candidate]) -> str:
    sections = []
    if context.glossary:
        sections.append("Glossary:\n" + _dump(list(context.glossary)))
    if context.variables:
        sections.append("What is known about this conversation:\n" + _dump(dict(context.variables)))
    if context.tools:
        sections.append("Tool results of this turn:\n" + _dump(dict(context.tools)))
    if context.kb:
        passages = [{"text": p.get("text"), "source": p.get("knowledge_base")} for p in context.kb]
        sections.append("Knowledge-base passages:\n" + _dump(passages))
    if candidates:
        sections.append(
            "Approved responses (prefer them, word for word, when one fits):\n"
            + "\n".join(f"- {c.text}" for c in candidates)
        )
    return "\n\n".join(sections)


def _parts_line(parts: Sequence[Part]) -> str:
    if not parts:
        return (
            "Write one short message that answers the customer within your role; if you "
            "cannot help with it, say so politely."
        )
    lines = [f"The reply has {len(parts)} part(s); write one message for each:"]
    for n, part in enumerate(parts, start=1):
        what = "the next step" if part.kind == "step" else "a rule that applies"
        lines.append(f"{n}. ({what}) {part.instruction}")
    return "\n".join(lines)


def _conversation(context: TurnContext, message: str | None) -> tuple[ChatMessage, ...]:
    said = [
        ChatMessage("user" if u.role == "customer" else "assistant", u.text)
        for u in context.conversation
    ]
    if message is not None:
        said.append(ChatMessage("user", message))
    if not said:
        said.append(ChatMessage("user", "(the customer has not written yet)"))
    return tuple(said)


def reply_request(request: ComposeRequest, context: TurnContext) -> ModelRequest:
    """The fluid reply: free text, one message per part."""
    parts = list(request.parts)
    candidates = [c for c in request.candidates if not c.exact]
    return ModelRequest(
        system=_REPLY_SYSTEM.format(
            agent_line=f"You are {_agent(context)}.\n",
            system_prompt=context.system_prompt or "",
            parts_line=_parts_line(parts),
            extra=_context_block(context, candidates),
        ).strip(),
        messages=_conversation(context, request.message),
        temperature=_temperature(context, None),
        max_tokens=context.max_tokens or 1024,
        purpose="reply",
    )


def reply_parts(text: str) -> list[str]:
    """The messages of a fluid reply (split at :data:`PART_BREAK` lines, blanks dropped)."""
    pieces = re.split(rf"(?m)^[ \t]*{re.escape(PART_BREAK)}[ \t]*$", text)
    return [piece.strip() for piece in pieces if piece.strip()]


def choose_request(
    request: ComposeRequest, context: TurnContext
) -> tuple[ModelRequest, list[Part]]:
    """The strict choice: per part, one approved response id or ``none``."""
    parts = list(request.parts) or [Part("reply", "reply", "answer the customer's message")]
    ids = {f"r{n}": c for n, c in enumerate(request.candidates, start=1)}
    document = {
        "parts": [
            {"id": f"p{n}", "kind": p.kind, "what": p.instruction}
            for n, p in enumerate(parts, start=1)
        ],
        "approved_responses": [
            {"id": rid, "text": c.text, **({"fields": list(c.fields)} if c.fields else {})}
            for rid, c in ids.items()
        ],
        "glossary": list(context.glossary),
        "variables": dict(context.variables),
    }
    part_ids = [f"p{n}" for n in range(1, len(parts) + 1)]
    schema = {
        "type": "object",
        "properties": {
            "choices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "part": {
                            "type": "string",
                            "enum": part_ids,
                        },
                        "response": {"type": "string", "enum": [*ids, "none"]},
                        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                    "required": ["part", "response"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["choices"],
        "additionalProperties": False,
    }
    messages = list(_conversation(context, request.message))
    messages.append(ChatMessage("user", "Choose for these parts:\n" + _dump(document)))
    return (
        ModelRequest(
            system=_CHOOSE_SYSTEM.format(
                agent_line=f"You are {_agent(context)}.\n",
                system_prompt=context.system_prompt or "",
            ).strip(),
            messages=tuple(messages),
            schema=schema,
            schema_name="choice",
            temperature=0.0,
            max_tokens=100 + 40 * len(parts),
            purpose="choose",
        ),
        parts,
    )
