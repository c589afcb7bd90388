"""Deterministic ids for bundle entities that were given none.

An id is a UUIDv5 of the entity's kind and name inside its parent's id, so the same
bundle yields the same ids on every machine, a republish updates rather than
duplicates, and renaming a journey or a state is what changes its id. Entities
without a name of their own (transitions, unnamed guidelines and canned responses)
are told apart by their content and, among equal ones, by their order.

Tools are scoped by workspace in the database, not by agent, so a tool's id hangs
off the fixed namespace and its name only: two agents naming the same tool share it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterator
from typing import TYPE_CHECKING, Protocol
from uuid import UUID, uuid5

from parlant_runtime.model import NIL_ID

if TYPE_CHECKING:
    from parlant_runtime.bundle.schema import AgentBundle

__all__ = ["NAMESPACE", "derive_ids", "derived_id_pairs", "rebase_ids", "workspace_root"]

NAMESPACE = UUID("d58f2bae-9412-4dd6-8f1f-7576476aac26")
"""Root namespace of every derived id. Never change it: ids in databases depend on it."""

_SEP = "\x1f"  # unit separator: cannot appear in a YAML plain scalar by accident


class _HasId(Protocol):
    id: UUID


def _key(*parts: object) -> str:
    return _SEP.join(str(part) for part in parts)


class _Occurrences:
    """Numbers equal keys in order: the n-th entity with the same content gets n."""

    def __init__(self) -> None:
        self._seen: Counter[Hashable] = Counter()

    def next(self, key: Hashable) -> int:
        count = self._seen[key]
        self._seen[key] += 1
        return count


def _derivations(bundle: AgentBundle, root: UUID) -> Iterator[tuple[_HasId, _HasId | UUID, str]]:
    """Each entity with what its derived id hangs off (a parent or the root) and its key.

    Parents come before their children; a child's id is derived from its parent's id
    as it is when the child is reached, so filling ids while iterating is consistent.
    """
    agent = bundle.agent
    yield agent, root, _key("agent", agent.name)

    seen = _Occurrences()
    for guideline in bundle.guidelines:
        if guideline.name is not None:
            key = _key("guideline", guideline.name)
        else:
            content = (guideline.condition or "", guideline.action)
            key = _key("guideline", "", *content, seen.next(("guideline", content)))
        yield guideline, agent, key
    for canned in bundle.canned_responses:
        if canned.name is not None:
            key = _key("canned", canned.name)
        else:
            key = _key("canned", "", canned.template, seen.next(("canned", canned.template)))
        yield canned, agent, key
    for term in bundle.terms:
        yield term, agent, _key("term", term.name)
    for variable in bundle.variables:
        yield variable, agent, _key("variable", variable.scope.value, variable.key)
    for kb_link in bundle.knowledge_bases:
        yield kb_link, agent, _key("knowledge-base", kb_link.knowledge_base_id)
    for tool in bundle.tools:
        yield tool, root, _key("tool", tool.name)
        for integration in tool.integrations:
            target = (integration.integration_type.value, integration.target_id)
            key = _key("integration", *target, seen.next(("integration", tool.name, target)))
            yield integration, tool, key
    for journey in bundle.journeys:
        yield journey, agent, _key("journey", journey.title)
        for state in journey.states:
            yield state, journey, _key("state", state.name)
        for transition in journey.transitions:
            ends = (transition.from_state, transition.to_state)
            key = _key("transition", *ends, seen.next(("transition", journey.title, ends)))
            yield transition, journey, key
        for link in journey.guidelines:
            yield link, journey, _key("guideline-link", link.guideline)


def _derive(parent: _HasId | UUID, key: str) -> UUID:
    return uuid5(parent if isinstance(parent, UUID) else parent.id, key)


def derived_id_pairs(bundle: AgentBundle, root: UUID = NAMESPACE) -> Iterator[tuple[_HasId, UUID]]:
    """Each entity of the bundle with the id it would get if it had none.

    ``root`` is the namespace of the agent's and the tools' ids.
    """
    for entity, parent, key in _derivations(bundle, root):
        yield entity, _derive(parent, key)


def derive_ids(bundle: AgentBundle) -> None:
    """Give every entity still holding the nil id its derived id, in place.

    Only missing ids are computed: a bundle read from a database has them all.
    """
    for entity, parent, key in _derivations(bundle, NAMESPACE):
        if entity.id == NIL_ID:
            entity.id = _derive(parent, key)


def workspace_root(workspace_id: str) -> UUID:
    """The namespace of a workspace's derived ids (so workspaces never share an id)."""
    return uuid5(NAMESPACE, _key("workspace", workspace_id))


def rebase_ids(bundle: AgentBundle, old_root: UUID, new_root: UUID) -> AgentBundle:
    """A copy whose ids derived under ``old_root`` are derived under ``new_root`` instead.

    Ids given explicitly (not equal to the derived ones) are kept. Publishing rebases
    a bundle into its workspace's namespace; exporting rebases it back, so that
    ``publish -> export`` gives the bundle that was published.
    """
    before = [derived for _, derived in derived_id_pairs(bundle, old_root)]
    rebased = bundle.model_copy(deep=True)
    pairs = derived_id_pairs(rebased, new_root)
    for (entity, derived), old in zip(pairs, before, strict=True):
        if entity.id == old:
            entity.id = derived
    return rebased
