"""What a publish changes, independent of the database: ids, differences, moves.

Stores call these pure functions inside their publishing transaction:
:func:`for_workspace` gives a bundle the workspace's ids, :func:`diff` lists what
is added, removed and changed, :func:`removed_states` and :func:`plan_moves`
decide where live sessions on removed states go.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from uuid import UUID

from parlant_runtime.bundle.ids import NAMESPACE, derived_id_pairs, rebase_ids, workspace_root
from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.storage.port import AgentChanges, InvalidData, PublishRefused

__all__ = [
    "diff",
    "entity_ids",
    "for_workspace",
    "from_workspace",
    "move_record",
    "plan_moves",
    "refuse_borrowed_ids",
    "refuse_knowledge_bases",
    "refuse_taken_ids",
    "removed_states",
]


def for_workspace(bundle: AgentBundle, workspace_id: str) -> AgentBundle:
    """The bundle with its derived ids rebased into the workspace's namespace.

    Raises:
        InvalidData: an explicit id is a version-5 UUID that is not the workspace's own
            (see :func:`refuse_borrowed_ids`).
    """
    refuse_borrowed_ids(bundle, workspace_id)
    return rebase_ids(bundle, NAMESPACE, workspace_root(workspace_id))


def _paths(bundle: AgentBundle) -> dict[int, str]:
    """Where each entity is in the bundle (``journeys[0].states[2]``), by ``id()``."""
    paths = {id(bundle.agent): "agent"}
    lists: tuple[tuple[str, Sequence[Any]], ...] = (
        ("guidelines", bundle.guidelines),
        ("cannedResponses", bundle.canned_responses),
        ("terms", bundle.terms),
        ("variables", bundle.variables),
        ("knowledgeBases", bundle.knowledge_bases),
        ("tools", bundle.tools),
        ("journeys", bundle.journeys),
    )
    for name, entries in lists:
        for i, entry in enumerate(entries):
            paths[id(entry)] = f"{name}[{i}]"
    for i, tool in enumerate(bundle.tools):
        for k, integration in enumerate(tool.integrations):
            paths[id(integration)] = f"tools[{i}].integrations[{k}]"
    for i, journey in enumerate(bundle.journeys):
        children = (
            ("states", journey.states),
            ("transitions", journey.transitions),
            ("guidelines", journey.guidelines),
        )
        for name, entries in children:
            for k, entry in enumerate(entries):
                paths[id(entry)] = f"journeys[{i}].{name}[{k}]"
    return paths


def refuse_borrowed_ids(bundle: AgentBundle, workspace_id: str) -> None:
    """Refuse an explicit version-5 id that this workspace does not derive itself.

    Derived ids are version-5 UUIDs, hashed from a workspace's id and the entities'
    names: anyone can compute another workspace's. Were a workspace free to give them
    as explicit ids, it could publish first under another's ids and block the owner's
    publish. So version 5 is the library's: an explicit id of that version is accepted
    only when it is the id the bundle derives as a file (the ``NAMESPACE``) or in this
    workspace (a bundle read back from the store); any other explicit id must be of
    another version (random ids, version 4, are what hosts use).

    Raises:
        InvalidData: naming the entity (``journeys[0].states[2]``) and the id.
    """
    root = workspace_root(workspace_id)
    paths: dict[int, str] | None = None
    for (entity, as_file), (_, as_own) in zip(
        derived_id_pairs(bundle, NAMESPACE), derived_id_pairs(bundle, root), strict=True
    ):
        if entity.id.version == 5 and entity.id not in (as_file, as_own):
            paths = paths or _paths(bundle)
            where = paths.get(id(entity), type(entity).__name__)
            raise InvalidData(
                f"{where} has the explicit id {entity.id}, a version-5 id: those are the "
                "ids the library derives, each workspace its own, and this is not one of "
                f"workspace {workspace_id!r}'s (a bundle whose ids were derived and then had "
                "a parent's id changed has such ids too); leave the id out to have it "
                "derived, or give a random (version 4) id"
            )


def from_workspace(bundle: AgentBundle, workspace_id: str) -> AgentBundle:
    """The inverse of :func:`for_workspace`: ids as a bundle file derives them."""
    return rebase_ids(bundle, workspace_root(workspace_id), NAMESPACE)


def _entities(bundle: AgentBundle) -> Iterator[tuple[str, UUID, str, dict[str, Any]]]:
    """(kind, id, label, content) for every entity; content leaves out ids and children."""

    def content(model: Any, position: int, *children: str) -> dict[str, Any]:
        data: dict[str, Any] = model.model_dump(mode="json", exclude={"id", *children})
        data["position"] = position  # order matters: it breaks transition priority ties
        return data

    yield "agent", bundle.agent.id, bundle.agent.name, content(bundle.agent, 0)
    for i, g in enumerate(bundle.guidelines):
        yield "guideline", g.id, g.name or g.action[:40], content(g, i)
    for i, c in enumerate(bundle.canned_responses):
        yield "canned_response", c.id, c.name or c.template[:40], content(c, i)
    for i, term in enumerate(bundle.terms):
        yield "term", term.id, term.name, content(term, i)
    for i, tool in enumerate(bundle.tools):
        yield "tool", tool.id, tool.name, content(tool, i)
    for i, v in enumerate(bundle.variables):
        yield "variable", v.id, f"{v.key} ({v.scope.value})", content(v, i)
    for i, kb in enumerate(bundle.knowledge_bases):
        yield "knowledge_base", kb.id, kb.knowledge_base_id, content(kb, i)
    for i, j in enumerate(bundle.journeys):
        yield "journey", j.id, j.title, content(j, i, "states", "transitions", "guidelines")
        for k, s in enumerate(j.states):
            yield "state", s.id, f"{j.title}/{s.name}", content(s, k)
        for k, tr in enumerate(j.transitions):
            label = f"{j.title}/{tr.from_state}->{tr.to_state}"
            yield "transition", tr.id, label, content(tr, k)
        for k, link in enumerate(j.guidelines):
            yield "guideline_link", link.id, f"{j.title}/{link.guideline}", content(link, k)


def _by_key(bundle: AgentBundle) -> dict[tuple[str, UUID], tuple[str, dict[str, Any]]]:
    return {(kind, id_): (label, data) for kind, id_, label, data in _entities(bundle)}


def entity_ids(bundle: AgentBundle) -> dict[str, set[UUID]]:
    """The ids of the bundle's entities, by kind (``agent``, ``tool``, ``state``, ...)."""
    ids: dict[str, set[UUID]] = {}
    for kind, id_, _, _ in _entities(bundle):
        ids.setdefault(kind, set()).add(id_)
    for tool in bundle.tools:
        ids.setdefault("tool_integration", set()).update(i.id for i in tool.integrations)
    return ids


def refuse_taken_ids(
    new: AgentBundle, workspace_id: str, others: Iterator[tuple[str, AgentBundle]]
) -> None:
    """Refuse explicit ids that another agent (of any workspace) already uses.

    Tools are shared by the agents of a workspace, so a tool id may repeat there.

    Raises:
        InvalidData: an id of the bundle belongs to another agent's entity.
    """
    mine = entity_ids(new)
    for other_workspace, other in others:
        theirs = entity_ids(other)
        for kind, ids in mine.items():
            if kind in ("tool", "tool_integration") and other_workspace == workspace_id:
                continue
            taken = ids & theirs.get(kind, set())
            if taken:
                raise InvalidData(
                    f"{kind} id {sorted(map(str, taken))[0]} already belongs to another "
                    "agent; give a new id or leave it out to have one derived"
                )


def refuse_knowledge_bases(
    bundle: AgentBundle, workspace_id: str, owners: Mapping[str, str | None]
) -> None:
    """Refuse links to knowledge bases that are not the workspace's.

    ``owners`` maps the knowledge base ids the store knows to their workspace (``None``:
    none). A knowledge base of another workspace is refused with exactly the message of
    one that does not exist, so a publish tells nothing about other workspaces.

    Raises:
        InvalidData: naming every knowledge base refused.
    """
    refused = sorted(
        {
            link.knowledge_base_id
            for link in bundle.knowledge_bases
            if owners.get(link.knowledge_base_id) != workspace_id
        }
    )
    if refused:
        raise InvalidData(
            f"the bundle links knowledge base(s) {', '.join(map(repr, refused))}, which "
            f"workspace {workspace_id!r} does not have; create them in the host platform "
            "first (or with ensure_knowledge_bases, or publish with --create-workspace on an "
            "embedded database). An agent links its own workspace's knowledge bases only, and "
            "ids are unique in a database: use another id if one is another workspace's"
        )


def diff(old: AgentBundle | None, new: AgentBundle) -> AgentChanges:
    """What ``new`` adds, removes and changes compared with ``old``, by kind."""
    before = _by_key(old) if old is not None else {}
    after = _by_key(new)
    added: dict[str, list[str]] = {}
    removed: dict[str, list[str]] = {}
    changed: dict[str, list[str]] = {}
    for key, (label, data) in after.items():
        if key not in before:
            added.setdefault(key[0], []).append(label)
        elif before[key][1] != data:
            changed.setdefault(key[0], []).append(label)
    for key, (label, _) in before.items():
        if key not in after:
            removed.setdefault(key[0], []).append(label)
    return AgentChanges(
        added={kind: tuple(labels) for kind, labels in added.items()},
        removed={kind: tuple(labels) for kind, labels in removed.items()},
        changed={kind: tuple(labels) for kind, labels in changed.items()},
    )


def removed_states(old: AgentBundle | None, new: AgentBundle) -> dict[UUID, tuple[str, str]]:
    """States of ``old`` that ``new`` no longer has: id -> (journey title, state name)."""
    if old is None:
        return {}
    kept = {state.id for journey in new.journeys for state in journey.states}
    return {
        state.id: (journey.title, state.name)
        for journey in old.journeys
        for state in journey.states
        if state.id not in kept
    }


def plan_moves(
    new: AgentBundle,
    stranded: Mapping[UUID, tuple[str, str]],
    mapping: Mapping[str, Mapping[str, str]] | None,
    *,
    force: bool,
) -> dict[UUID, tuple[UUID, UUID] | None]:
    """Where sessions on each removed state go: (journey id, state id), or out of the journey.

    Raises:
        PublishRefused: a removed state with live sessions has no mapping and not ``force``;
            or a mapping names a state the new version does not have.
    """
    moves: dict[UUID, tuple[UUID, UUID] | None] = {}
    unmapped: list[str] = []
    for state_id, (title, name) in stranded.items():
        target = (mapping or {}).get(title, {}).get(name)
        if target is None:
            if not force:
                unmapped.append(f"{title}/{name}")
            moves[state_id] = None
            continue
        journey = new.journey(title)
        state = journey.state(target) if journey is not None else None
        if journey is None or state is None:
            raise PublishRefused(
                f"the state mapping sends {title}/{name} to {title}/{target}, which the new "
                "version does not have; map it to one of the journey's states"
            )
        moves[state_id] = (journey.id, state.id)
    if unmapped:
        raise PublishRefused(
            "live sessions are on states this version removes: "
            + ", ".join(sorted(unmapped))
            + "; map them to new states (--map 'Journey/old=new') or force the publish "
            "(--force: those sessions leave their journey)"
        )
    return moves


def move_record(
    new: AgentBundle,
    removed: tuple[str, str],
    target: tuple[UUID, UUID] | None,
    version: int,
) -> tuple[dict[str, Any], UUID | None, UUID | None]:
    """The ``journey_transition`` event a publish writes for a session it moves off the
    removed state ``removed`` (journey title, state name): its content, journey id and
    state id. ``target`` ``None`` (a forced publish) leaves the journey: ``"to": null``.

    With it the log alone gives every session's position, as the engine's own
    ``journey_transition`` events do (``"republished"`` is the agent version that moved
    the session).
    """
    title, name = removed
    if target is None:
        return {"journey": title, "from": name, "to": None, "republished": version}, None, None
    journey_id, state_id = target
    names = {
        state.id: (journey.title, state.name)
        for journey in new.journeys
        for state in journey.states
    }
    new_title, new_name = names[state_id]
    content = {"journey": new_title, "from": name, "to": new_name, "republished": version}
    return content, journey_id, state_id
