"""The console in a real browser against a server with API keys: it asks for a key (a wrong one is refused and
asked for again), keeps it in sessionStorage, sends and watches with it, and its live task list (read with fetch,
since EventSource cannot send the header) shows the key's own tasks only."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.async_api import Page

from tests.conftest import stop_server
from tests.e2e import test_console as harness
from tests.e2e.auth_harness import KeyedServer, keyed_server
from tests.e2e.test_console import fill_echo, samples_until_settled

pytestmark = harness.pytestmark
browser = harness.browser  # the fixtures, shared with test_console.py
page = harness.page


@pytest.fixture(scope="module")
def ks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyedServer]:
    srv = keyed_server(tmp_path_factory.mktemp("console-auth"), {"alice": "send,read", "bob": "send,read"})
    yield srv
    stop_server(srv.server)


def send_as(ks: KeyedServer, who: str, text: str) -> str:
    message = {"role": "user", "messageId": text, "parts": [{"kind": "text", "text": text}]}
    body = {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": message}}
    answer = httpx.post(ks.url + "/a2a", json=body, headers=ks.headers(who), timeout=10).json()
    task_id: str = answer["result"]["id"]
    return task_id


async def test_the_console_asks_for_a_key_and_works_with_it(ks: KeyedServer, page: Page) -> None:
    await page.goto(ks.url + "/")
    await page.wait_for_selector("#key-form:not([hidden])")
    assert await page.get_attribute("body", "data-ready") is None  # nothing works before a key
    await page.fill("#api-key", "a2a_not-a-key")
    await page.click("[data-testid='use-key']")
    note = page.locator("[data-testid='key-note']")
    await note.wait_for(state="visible")
    assert "refused" in (await note.text_content() or "") and "not valid" in (await note.text_content() or "")
    await page.fill("#api-key", ks.keys["alice"])
    await page.click("[data-testid='use-key']")
    await page.wait_for_selector("body[data-ready='true']")
    assert await page.is_hidden("#key-form")
    assert await page.evaluate("() => sessionStorage.getItem('a2a-server.api-key')") == ks.keys["alice"]

    # the live list is fed over fetch with the key; bob's task never appears, alice's own does
    await page.wait_for_selector("#tasks-live[data-live='live']")
    bobs = send_as(ks, "bob", "bob-only-" + ks.keys["bob"][-6:])
    alices = send_as(ks, "alice", "alice-too-" + ks.keys["alice"][-6:])
    await page.wait_for_selector(f"#tasks li[data-task-id='{alices}']", state="attached")
    assert await page.locator(f"#tasks li[data-task-id='{bobs}']").count() == 0

    # a send from the page streams with the key
    prompt = "a keyed console streams this back"
    await fill_echo(page, prompt, delay_ms=20)
    await page.click("#send")
    samples = await samples_until_settled(page)
    assert samples[-1] == {"text": prompt, "state": "completed", "error": ""}

    # a reload keeps the key (this tab's sessionStorage): no question asked again
    await page.reload()
    await page.wait_for_selector("body[data-ready='true']")
    assert await page.is_hidden("#key-form")
