"""Knowledge bases: what the agent may look up, searched once per turn.

An agent links knowledge bases (the bundle's ``knowledgeBases``: ``knowledgeBaseId``,
``enabled``, ``searchThreshold`` 0-100, ``maxResults``, ``priority``). Each turn with
a customer message asks the :class:`Retriever` plugin once, in one batch, for every
enabled link (the query is the message); :func:`select` then keeps the passages
whose score reaches the link's threshold, at most ``maxResults`` of each link, and
orders them: links by priority (higher first, ties in bundle order), passages of a
link by score (higher first, ties in the order the retriever gave). Templates and
expression conditions read the result as ``kb``: a list of
``{"knowledge_base", "id", "text", "score", "metadata"}``. Each link searched counts
one ``search_count`` (a usage counter of ``parlant_agent_knowledge_base``) when the
retriever answered.

:class:`KeywordRetriever` is the deterministic built-in one, for tests and offline
use: documents registered in memory by knowledge base id, scored by the share of
the query's words they contain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from parlant_runtime.bundle.schema import KnowledgeBaseLinkSpec
from parlant_runtime.errors import ParlantRuntimeError

__all__ = [
    "KeywordRetriever",
    "KnowledgeError",
    "KnowledgeQuery",
    "Passage",
    "Retriever",
    "queries_for",
    "select",
    "words",
]


class KnowledgeError(ParlantRuntimeError):
    """A document or passage breaks the retriever contract (empty id, score out of range)."""


@dataclass(frozen=True, slots=True)
class KnowledgeQuery:
    """One knowledge base to search, with its link's settings and its workspace.

    A publish links only knowledge bases of the agent's own workspace; a retriever
    that serves several workspaces should still search ``knowledge_base`` within
    ``workspace_id`` only (defence in depth: documents of one tenant never answer
    another's customer).
    """

    knowledge_base: str
    text: str
    threshold: int
    """Least score (0-100) a passage needs to be used."""
    max_results: int
    workspace_id: str
    """The workspace of the agent asking (and of the knowledge base)."""


@dataclass(frozen=True, slots=True)
class Passage:
    """One piece of a knowledge base that answers a query, with its relevance 0-100."""

    id: str
    text: str
    score: int
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.score, int) or isinstance(self.score, bool):
            raise KnowledgeError(f"passage {self.id!r}: score must be a whole number 0-100")
        if not 0 <= self.score <= 100:
            raise KnowledgeError(f"passage {self.id!r}: score {self.score} is not in 0-100")


class Retriever(Protocol):
    """Searches knowledge bases; one call per turn with every query of the turn."""

    async def retrieve(self, queries: Sequence[KnowledgeQuery]) -> Sequence[Sequence[Passage]]:
        """The passages found for each query, in the same order as ``queries``.

        A retriever may return more than ``max_results`` or passages under the
        threshold; the runtime applies both (see :func:`select`).
        """
        ...


def queries_for(
    links: Iterable[KnowledgeBaseLinkSpec], message: str, workspace_id: str
) -> list[KnowledgeQuery]:
    """The turn's queries: one per enabled link, in bundle order."""
    return [
        KnowledgeQuery(
            link.knowledge_base_id,
            message,
            link.search_threshold,
            link.max_results,
            workspace_id,
        )
        for link in links
        if link.enabled
    ]


def select(
    links: Sequence[KnowledgeBaseLinkSpec],
    queries: Sequence[KnowledgeQuery],
    found: Sequence[Sequence[Passage]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(kb, trace)``: the passages used, in order (see the module docstring), and one
    trace entry per query (kept ids and scores, how many were dropped and why).

    Raises:
        KnowledgeError: the retriever answered a different number of queries.
    """
    if len(found) != len(queries):
        raise KnowledgeError(
            f"the retriever answered {len(found)} queries, not the {len(queries)} asked"
        )
    priority = {link.knowledge_base_id: (-link.priority, n) for n, link in enumerate(links)}
    ranked = sorted(
        zip(queries, found, strict=True), key=lambda pair: priority[pair[0].knowledge_base]
    )
    kb: list[dict[str, Any]] = []
    trace: list[dict[str, Any]] = []
    for query, passages in ranked:
        ordered = sorted(enumerate(passages), key=lambda item: (-item[1].score, item[0]))
        above = [p for _, p in ordered if p.score >= query.threshold]
        kept = above[: query.max_results]
        kb.extend(
            {
                "knowledge_base": query.knowledge_base,
                "id": p.id,
                "text": p.text,
                "score": p.score,
                "metadata": dict(p.metadata),
            }
            for p in kept
        )
        trace.append(
            {
                "knowledge_base": query.knowledge_base,
                "threshold": query.threshold,
                "max_results": query.max_results,
                "kept": [[p.id, p.score] for p in kept],
                "below_threshold": len(passages) - len(above),
                "over_max_results": len(above) - len(kept),
            }
        )
    return kb, trace


_WORD = re.compile(r"\w+")
_STOP = frozenset(
    "a an and are as at be by can do does for from has have how i in is it its me my of on "
    "or our so that the their there this to was we what when where which who why will with "
    "you your".split()
)


def words(text: str) -> frozenset[str]:
    """The words of ``text`` that carry meaning: case-folded, without common stop words."""
    return frozenset(w for w in _WORD.findall(text.casefold()) if w not in _STOP)


@dataclass(frozen=True, slots=True)
class _Document:
    id: str
    text: str
    words: frozenset[str]
    metadata: Mapping[str, Any]


class KeywordRetriever:
    """The deterministic built-in retriever: documents in memory, scored by keywords.

    A document's score for a query is the share of the query's words (see
    :func:`words`) it contains, as a whole percentage rounded down; a query without
    such words finds nothing. Documents are searched by the knowledge base id they
    were added under; an id no document was added under finds nothing.
    """

    def __init__(self, documents: Mapping[str, Iterable[str | tuple[str, str]]] | None = None):
        self._documents: dict[str, list[_Document]] = {}
        for knowledge_base, entries in (documents or {}).items():
            for n, entry in enumerate(entries):
                doc_id, text = entry if isinstance(entry, tuple) else (f"{n}", entry)
                self.add(knowledge_base, doc_id, text)

    def add(
        self,
        knowledge_base: str,
        doc_id: str,
        text: str,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Add a document to ``knowledge_base``.

        Raises:
            KnowledgeError: an empty knowledge base id, document id or text, or a
                document id already added to that knowledge base.
        """
        for what, value in (("knowledge base id", knowledge_base), ("document id", doc_id)):
            if not isinstance(value, str) or not value.strip():
                raise KnowledgeError(f"a {what} must be a non-empty string, not {value!r}")
        if not isinstance(text, str) or not text.strip():
            raise KnowledgeError(f"document {doc_id!r} of {knowledge_base!r} has no text")
        known = self._documents.setdefault(knowledge_base, [])
        if any(doc.id == doc_id for doc in known):
            raise KnowledgeError(
                f"document {doc_id!r} is already in knowledge base {knowledge_base!r}"
            )
        known.append(_Document(doc_id, text, words(text), dict(metadata or {})))

    async def retrieve(self, queries: Sequence[KnowledgeQuery]) -> Sequence[Sequence[Passage]]:
        """Every document sharing a word with the query, best first (see the class)."""
        answers: list[list[Passage]] = []
        for query in queries:
            wanted = words(query.text)
            found: list[Passage] = []
            if wanted:
                for doc in self._documents.get(query.knowledge_base, ()):
                    shared = len(wanted & doc.words)
                    if shared:
                        score = shared * 100 // len(wanted)
                        found.append(Passage(doc.id, doc.text, score, doc.metadata))
            found.sort(key=lambda p: -p.score)  # stable: ties keep the order added
            answers.append(found)
        return answers
