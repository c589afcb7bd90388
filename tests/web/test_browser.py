"""The chat page, loaded once in headless Chromium: a message typed, the reply seen via SSE.

Playwright drives the system's Chromium (Debian's ``chromium`` package at
``/usr/bin/chromium``, or ``$PARLANT_CHROMIUM``); nothing is downloaded. Without
it the test is skipped, saying why; CI sets ``PARLANT_REQUIRE_BROWSER=1`` and a
missing browser then fails the test instead of hiding it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import httpx
import pytest

from tests.web.conftest import Server

if TYPE_CHECKING:
    from playwright.sync_api import Browser

REQUIRE_ENV = "PARLANT_REQUIRE_BROWSER"
CHROMIUM_ENV = "PARLANT_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 15_000


def _unavailable(message: str) -> NoReturn:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message} ({REQUIRE_ENV}=1: the browser test must run)", pytrace=False)
    pytest.skip(message)


def _chromium() -> str:
    wanted = os.environ.get(CHROMIUM_ENV)
    if wanted:
        if not Path(wanted).is_file():
            _unavailable(f"{CHROMIUM_ENV}={wanted} is not a file")
        return wanted
    found = shutil.which("chromium") or (
        DEFAULT_CHROMIUM if Path(DEFAULT_CHROMIUM).is_file() else None
    )
    if found is None:
        _unavailable(
            "no Chromium found (install Debian's chromium package, or set "
            f"{CHROMIUM_ENV} to a Chromium executable)"
        )
    return found


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Headless Chromium through playwright, or a skip (a failure under CI) saying why."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    executable = _chromium()
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=executable, headless=True)
        except Error as exc:
            _unavailable(f"Chromium at {executable} does not start: {exc.message.splitlines()[0]}")
        try:
            yield launched
        finally:
            launched.close()


def test_the_page_shows_the_agents_reply_as_it_streams_in(
    browser: Browser, sqlite_server: Server
) -> None:
    page = browser.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(sqlite_server.base_url)
    page.wait_for_selector("body[data-session]", timeout=WAIT_MS)
    page.wait_for_function(
        "document.getElementById('status').textContent === 'connected'", timeout=WAIT_MS
    )
    session_id = page.locator("body").get_attribute("data-session")
    assert session_id

    page.fill("#message", "I'd like a latte please")
    page.press("#message", "Enter")
    page.locator(".bubble.customer", has_text="I'd like a latte please").wait_for(timeout=WAIT_MS)
    reply = page.locator(".bubble.agent", has_text="One latte coming up")
    reply.wait_for(timeout=WAIT_MS)
    assert page.locator(".note", has_text="calling place_order").count() == 1

    # a message sent by someone else (another tab, another process) shows up too:
    # the page renders the stream, not the answers to its own requests
    with httpx.Client(base_url=sqlite_server.base_url, timeout=10.0) as client:
        sent = client.post(f"/sessions/{session_id}/messages", json={"text": "thanks"})
        assert sent.status_code == 200
    page.locator(".bubble.agent", has_text="You're welcome").wait_for(timeout=WAIT_MS)
    bubbles = page.locator(".bubble").all_inner_texts()
    assert len(bubbles) == 4  # each event shown once
    assert problems == []
    page.close()
