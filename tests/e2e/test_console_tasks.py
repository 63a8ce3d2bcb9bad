"""The console's live task list, fed by the server's firehose (GET /a2a/events through EventSource).

The tasks here are started by another client after the page loaded, so only the firehose can bring them
to the list (ListTasks seeded it before they existed); the skill is not in the frames and comes from GetTask.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from playwright.async_api import Page

from tests.e2e import test_console as harness
from tests.e2e.test_console import (
    CuttableProxy,
    open_console,
    samples_until_settled,
    screenshot,
    send_in_background,
)

if TYPE_CHECKING:
    from tests.conftest import ServerProcess

pytestmark = harness.pytestmark
browser = harness.browser  # the fixtures, shared with test_console.py
page = harness.page

READ_ROW = """(id) => {
    const li = document.querySelector(`#tasks li[data-task-id="${id}"]`);
    return li && {state: li.dataset.state, skill: li.dataset.skill, text: li.textContent};
}"""


async def test_another_clients_task_shows_up_live_and_can_be_watched(
    server: ServerProcess, page: Page, tmp_path: Path
) -> None:
    await open_console(page, server.url)
    await page.wait_for_selector("#tasks-live[data-live='live']")
    assert await page.is_hidden("#tasks-note")
    prompt = "a task of somebody else that the list learns about from the firehose alone, word by word"
    thread, seen = send_in_background(server.url, prompt, delay_ms=120)
    try:
        row = f"#tasks li[data-task-id='{seen['task']}']"
        await page.wait_for_selector(f"{row}[data-state='working'][data-skill='echo']")
        shown = await page.evaluate(READ_ROW, seen["task"])
        assert re.fullmatch(r"workingecho[0-9a-f]{8}\d+ s", shown["text"]), shown  # state, skill, id, age
        await screenshot(page, tmp_path / "console-task-list.png")
        await page.click(f"{row} button")  # watch it: SubscribeToTask
        await page.wait_for_selector("#events li[data-kind='watch']", state="attached")
        samples = await samples_until_settled(page)
    finally:
        thread.join(30)
    assert samples[-1] == {"text": prompt, "state": "completed", "error": ""}
    await page.wait_for_selector(f"{row}[data-state='completed']")
    assert await page.get_attribute(f"{row} button", "aria-current") == "true"


async def test_the_list_resumes_after_the_feed_drops(server: ServerProcess, page: Page) -> None:
    """EventSource reconnects by itself with Last-Event-ID; a task that started while it was away appears."""
    async with CuttableProxy(server.port) as proxy:
        await open_console(page, f"http://127.0.0.1:{proxy.port}")
        await page.wait_for_selector("#tasks-live[data-live='live']")
        proxy.cut()
        thread, seen = send_in_background(server.url, "started while the feed was down", delay_ms=0)
        thread.join(30)
        await page.wait_for_selector(f"#tasks li[data-task-id='{seen['task']}'][data-state='completed']")
        assert await page.get_attribute("#tasks-live", "data-live") == "live"
    rows = await page.eval_on_selector_all("#tasks li", "items => items.map(li => li.dataset.taskId)")
    assert len(rows) == len(set(rows)), "a replayed event made a second row"
