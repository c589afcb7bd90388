"""Knowledge bases: the retriever protocol, the built-in keyword retriever, and ``kb``.

The built-in :class:`KeywordRetriever` is checked on its own (scores, order, refused
input); :func:`select` applies each link's threshold, maximum and priority; through
the :class:`Runtime`, the passages reach templates as ``kb`` and the trace, the
retriever is asked once per turn for every enabled link, and a retriever that fails
costs the turn its ``kb``, not its reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from parlant_runtime import bundle_from_data
from parlant_runtime.bundle.schema import KnowledgeBaseLinkSpec
from parlant_runtime.engine import (
    KeywordRetriever,
    KnowledgeError,
    KnowledgeQuery,
    Passage,
    Runtime,
)
from parlant_runtime.engine.knowledge import queries_for, select, words
from parlant_runtime.model import EventType
from parlant_runtime.storage.sql import schema
from parlant_runtime.storage.sql.engine import create_engine
from tests.engine.test_persisted import BACKENDS, database_url, opener
from tests.engine.test_turns import WS, Chat, bundle, kinds, open_chat


def query(kb: str, text: str, threshold: int = 0, max_results: int = 10) -> KnowledgeQuery:
    return KnowledgeQuery(kb, text, threshold, max_results, WS)


def link(kb: str, **fields: Any) -> KnowledgeBaseLinkSpec:
    return KnowledgeBaseLinkSpec.model_validate({"knowledgeBaseId": kb, **fields})


FAQ = [
    ("parking", "Free parking is available behind the clinic."),
    ("hours", "The clinic opens at 9 and closes at 17 on weekdays."),
    ("weekend", "On weekends the clinic is closed."),
]


# ---------------------------------------------------------------------- the keyword retriever


def test_words_drop_case_punctuation_and_stop_words() -> None:
    assert words("When does THE clinic open?") == {"clinic", "open"}
    assert words("the of and") == frozenset()


def test_the_keyword_retriever_scores_by_the_share_of_query_words_best_first() -> None:
    retriever = KeywordRetriever({"faq": FAQ})
    (found,) = asyncio.run(retriever.retrieve([query("faq", "Is the clinic open at weekends?")]))
    # the query's words: clinic, open, weekends ("opens" is another word than "open")
    assert [(p.id, p.score) for p in found] == [("weekend", 66), ("parking", 33), ("hours", 33)]
    assert found[0].text == "On weekends the clinic is closed."


def test_ties_keep_the_order_documents_were_added_and_unknown_bases_find_nothing() -> None:
    retriever = KeywordRetriever()
    retriever.add("faq", "b", "parking rules")
    retriever.add("faq", "a", "parking fees and parking rules", {"url": "/fees"})
    retriever.add("other", "c", "parking elsewhere")
    found = asyncio.run(
        retriever.retrieve(
            [query("faq", "parking fees"), query("faq", "parking"), query("nope", "parking")]
        )
    )
    assert [(p.id, p.score) for p in found[0]] == [("a", 100), ("b", 50)]
    assert [(p.id, p.score) for p in found[1]] == [("b", 100), ("a", 100)]
    assert found[0][0].metadata == {"url": "/fees"}
    assert found[2] == []
    assert asyncio.run(retriever.retrieve([query("faq", "the and of")])) == [[]]


@pytest.mark.parametrize(
    ("kb", "doc_id", "text", "message"),
    [
        ("", "x", "text", "knowledge base id"),
        ("faq", " ", "text", "document id"),
        ("faq", "x", "  ", "has no text"),
    ],
)
def test_the_keyword_retriever_refuses_empty_ids_and_texts(
    kb: str, doc_id: str, text: str, message: str
) -> None:
    with pytest.raises(KnowledgeError, match=message):
        KeywordRetriever().add(kb, doc_id, text)


def test_a_document_id_is_added_once_per_knowledge_base() -> None:
    retriever = KeywordRetriever({"faq": [("a", "one")]})
    retriever.add("other", "a", "two")  # another base: fine
    with pytest.raises(KnowledgeError, match="already in knowledge base 'faq'"):
        retriever.add("faq", "a", "three")


def test_a_passage_score_must_be_a_whole_number_from_0_to_100() -> None:
    with pytest.raises(KnowledgeError, match="not in 0-100"):
        Passage("x", "text", 101)
    with pytest.raises(KnowledgeError, match="whole number"):
        Passage("x", "text", True)


# ---------------------------------------------------------------------- the links' settings


def test_select_applies_threshold_and_max_results_and_orders_by_priority() -> None:
    links = [
        link("low", searchThreshold=50, maxResults=2, priority=100),
        link("high", searchThreshold=0, maxResults=1, priority=300),
    ]
    queries = queries_for(links, "q", WS)
    found = [
        [
            Passage("l1", "a", 40),
            Passage("l2", "b", 90),
            Passage("l3", "c", 60),
            Passage("l4", "d", 70),
        ],
        [Passage("h1", "e", 10), Passage("h2", "f", 20)],
    ]
    kb, trace = select(links, queries, found)
    assert [(p["knowledge_base"], p["id"], p["score"]) for p in kb] == [
        ("high", "h2", 20),
        ("low", "l2", 90),
        ("low", "l4", 70),
    ]
    assert trace == [
        {
            "knowledge_base": "high",
            "threshold": 0,
            "max_results": 1,
            "kept": [["h2", 20]],
            "below_threshold": 0,
            "over_max_results": 1,
        },
        {
            "knowledge_base": "low",
            "threshold": 50,
            "max_results": 2,
            "kept": [["l2", 90], ["l4", 70]],
            "below_threshold": 1,
            "over_max_results": 1,
        },
    ]


def test_disabled_links_are_not_searched_and_a_short_answer_is_refused() -> None:
    links = [link("on"), link("off", enabled=False)]
    queries = queries_for(links, "hello", WS)
    assert queries == [KnowledgeQuery("on", "hello", 70, 5, WS)]  # the schema's defaults
    with pytest.raises(KnowledgeError, match="answered 0 queries, not the 1 asked"):
        select(links, queries, [])


# ---------------------------------------------------------------------- through the runtime


class CountingRetriever(KeywordRetriever):
    def __init__(self, documents: dict[str, Any]) -> None:
        super().__init__(documents)
        self.batches: list[list[KnowledgeQuery]] = []

    async def retrieve(self, queries: Sequence[KnowledgeQuery]) -> Sequence[Sequence[Passage]]:
        self.batches.append(list(queries))
        return await super().retrieve(queries)


def kb_agent(**extra: Any) -> dict[str, Any]:
    return bundle(
        mode="strict",
        knowledgeBases=[
            {"knowledgeBaseId": "faq", "searchThreshold": 50, "maxResults": 1, "priority": 100},
            {"knowledgeBaseId": "policies", "searchThreshold": 50, "priority": 200},
            {"knowledgeBaseId": "old", "enabled": False},
        ],
        cannedResponses=[
            {
                "name": "answer",
                "template": "{% for p in kb %}[{{ p.knowledge_base }}] {{ p.text }} {% endfor %}",
                "conditions": ["{{ kb | length > 0 }}"],
                "priority": 200,
            },
            {"name": "none", "template": "I don't know."},
        ],
        **extra,
    )


DOCS = {
    "faq": FAQ,
    "policies": [("p1", "Parking fines are not refunded.")],
    "old": [("o1", "Parking was free in 1990.")],
}


def test_passages_reach_templates_as_kb_in_priority_order_and_the_trace() -> None:
    retriever = CountingRetriever(DOCS)

    async def scenario() -> None:
        c = await open_chat(kb_agent())
        c.runtime.retriever = retriever
        result = await c.say("parking fines?")
        assert result.replies == (
            "[policies] Parking fines are not refunded. [faq] Free parking is available "
            "behind the clinic. ",
        )
        assert [q.knowledge_base for q in retriever.batches[0]] == ["faq", "policies"]
        assert len(retriever.batches) == 1  # one batch per turn
        assert [k["knowledge_base"] for k in result.trace.knowledge] == ["policies", "faq"]
        assert result.trace.knowledge[1]["kept"] == [["parking", 50]]
        nothing = await c.say("what about dentists?")
        assert nothing.replies == ("I don't know.",)
        assert len(retriever.batches) == 2
        stored = (await c.events())[-1].metadata["trace"]
        assert stored["knowledge"][0]["kept"] == []
        links = {
            kb.knowledge_base_id: kb.id
            for kb in (await c.store.load_agent(WS, c.agent_id)).bundle.knowledge_bases
        }
        for name, searches in (("faq", 2), ("policies", 2), ("old", 0)):
            usage = await c.store.usage(WS, "agent_knowledge_base", links[name])
            assert usage == {"search_count": searches}

    asyncio.run(scenario())


def test_without_a_retriever_or_links_kb_is_empty_and_nothing_is_searched() -> None:
    retriever = CountingRetriever(DOCS)

    async def scenario() -> None:
        plain = await open_chat(kb_agent())  # no retriever
        assert (await plain.say("parking fines?")).replies == ("I don't know.",)
        unlinked = await open_chat(bundle(mode="strict", cannedResponses=[{"template": "ok"}]))
        unlinked.runtime.retriever = retriever
        result = await unlinked.say("parking fines?")
        assert (result.replies, retriever.batches, result.trace.knowledge) == (("ok",), [], [])

    asyncio.run(scenario())


class Broken(KeywordRetriever):
    async def retrieve(self, queries: Sequence[KnowledgeQuery]) -> Sequence[Sequence[Passage]]:
        raise ConnectionError("vector store unreachable")


class Short(KeywordRetriever):
    async def retrieve(self, queries: Sequence[KnowledgeQuery]) -> Sequence[Sequence[Passage]]:
        return []


@pytest.mark.parametrize(
    ("retriever", "error"),
    [
        (Broken(), "ConnectionError: vector store unreachable"),
        (Short(), "answered 0 queries, not the 2 asked"),
    ],
)
def test_a_failing_retriever_costs_the_turn_its_kb_not_its_reply(
    retriever: KeywordRetriever, error: str
) -> None:
    async def scenario() -> None:
        c: Chat = await open_chat(kb_agent())
        c.runtime.retriever = retriever
        result = await c.say("parking fines?")
        assert result.replies == ("I don't know.",)
        assert kinds(result.events) == ["customer_message", "status_update", "agent_message"]
        status = result.events[1]
        assert status.event_type is EventType.STATUS_UPDATE
        assert error in status.content["error"]
        link = (await c.store.load_agent(WS, c.agent_id)).bundle.knowledge_bases[0]
        assert await c.store.usage(WS, "agent_knowledge_base", link.id) == {"search_count": 0}
        assert (await c.current()).event_count == 3

    asyncio.run(scenario())


@pytest.mark.parametrize("backend", BACKENDS)
def test_searches_are_counted_per_link_on_every_store(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    open_store = opener(backend, request, tmp_path)
    url = database_url(backend, request, tmp_path)  # the database open_store opens

    async def scenario() -> None:
        store = await open_store()
        try:
            await store.ensure_workspace(WS)
            if url is not None:  # the host's knowledge_base rows the links point at
                engine = create_engine(url)
                async with engine.begin() as conn:
                    rows = [{"id": name, "name": name, "workspace_id": WS} for name in DOCS]
                    await conn.execute(schema.knowledge_base.insert(), rows)
                await engine.dispose()
            else:  # the memory store's own
                await store.ensure_knowledge_bases(WS, list(DOCS))
            report = await store.publish(WS, bundle_from_data(kb_agent()))
            runtime = Runtime(store, retriever=KeywordRetriever(DOCS))
            session = await runtime.start_session(WS, report.agent_id)
            first = await runtime.process_message(WS, session.id, "parking fines?")
            assert first.replies[0].startswith("[policies] Parking fines")
            await runtime.process_message(WS, session.id, "and parking?")
            links = {
                kb.knowledge_base_id: kb.id
                for kb in (await store.load_agent(WS, report.agent_id)).bundle.knowledge_bases
            }
            for rolled in (False, True):
                if rolled:
                    await store.roll_up_usage()
                counts = {
                    name: (await store.usage(WS, "agent_knowledge_base", link))["search_count"]
                    for name, link in links.items()
                }
                assert counts == {"faq": 2, "policies": 2, "old": 0}
        finally:
            await store.close()

    asyncio.run(scenario())
