"""The console's chat mode: follow-ups continue one context, and any task opens as its conversation.

Each check goes through the page as a user would and then asks the server (GetTask) what happened: the page
saying "same context" is not enough, the tasks must share the contextId on the server.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from playwright.async_api import Page

from tests.e2e import test_console as harness
from tests.e2e.test_console import (
    fill_echo,
    get_task,
    open_console,
    read_page,
    samples_until_settled,
    screenshot,
    send_in_background,
    wait_until,
)

if TYPE_CHECKING:
    from tests.conftest import ServerProcess

pytestmark = harness.pytestmark
browser = harness.browser  # the fixtures, shared with test_console.py
page = harness.page

# (role, text) of every turn on the page, top to bottom
READ_TURNS = """() => [...document.querySelectorAll('#turns > li')].map(li => [
    li.dataset.role, (li.querySelector('.bubble, .answer') || {}).textContent, li.dataset.taskId || null])"""


async def send_and_settle(page: Page, prompt: str, delay_ms: int = 0) -> dict[str, Any]:
    await fill_echo(page, prompt, delay_ms)
    await page.click("#send")
    return (await samples_until_settled(page))[-1]


async def agent_task_ids(page: Page) -> list[str]:
    ids: list[str] = await page.eval_on_selector_all(
        "#turns > li[data-role='agent']", "items => items.map(li => li.dataset.taskId)"
    )
    return ids


async def test_a_second_turn_continues_the_same_context(server: ServerProcess, page: Page, tmp_path: Path) -> None:
    await open_console(page, server.url)
    assert await page.is_checked("#chat"), "chat mode is the default"
    first = await send_and_settle(page, "the first turn names a context")
    assert first == {"text": "the first turn names a context", "state": "completed", "error": ""}
    context_id = await page.get_attribute("#context", "data-context-id")
    assert context_id
    second = await send_and_settle(page, "and the second turn stays in it", delay_ms=20)
    assert second == {"text": "and the second turn stays in it", "state": "completed", "error": ""}

    turns = await page.evaluate(READ_TURNS)
    assert [(role, text) for role, text, _ in turns] == [
        ("user", "the first turn names a context"),
        ("agent", "the first turn names a context"),
        ("user", "and the second turn stays in it"),
        ("agent", "and the second turn stays in it"),
    ]
    first_id, second_id = await agent_task_ids(page)
    assert first_id != second_id
    # the server's word: both tasks are in the context the page shows
    assert get_task(server.url, first_id)["contextId"] == context_id
    assert get_task(server.url, second_id)["contextId"] == context_id
    sent = await page.text_content("#events li[data-kind='send'] .text") or ""
    assert sent.endswith(f"in context {context_id}"), sent
    # only the newest answer is #output
    assert await page.eval_on_selector_all("[id='output']", "nodes => nodes.length") == 1
    assert await page.get_attribute("#turns > li:last-child .answer", "id") == "output"
    await screenshot(page, tmp_path / "console-chat.png")


async def test_without_chat_mode_every_message_starts_a_new_context(server: ServerProcess, page: Page) -> None:
    await open_console(page, server.url)
    await page.uncheck("#chat")
    await send_and_settle(page, "one")
    [first_id] = await agent_task_ids(page)
    await send_and_settle(page, "two")
    turns = await page.evaluate(READ_TURNS)
    assert [(role, text) for role, text, _ in turns] == [("user", "two"), ("agent", "two")]
    [second_id] = await agent_task_ids(page)
    assert get_task(server.url, first_id)["contextId"] != get_task(server.url, second_id)["contextId"]


async def test_new_chat_starts_a_new_context(server: ServerProcess, page: Page) -> None:
    await open_console(page, server.url)
    await send_and_settle(page, "before")
    before = await page.get_attribute("#context", "data-context-id")
    await page.click("#new-chat")
    assert await page.evaluate(READ_TURNS) == []
    assert await page.is_visible("#empty")
    await send_and_settle(page, "after")
    after = await page.get_attribute("#context", "data-context-id")
    assert before and after and before != after
    [task_id] = await agent_task_ids(page)
    assert get_task(server.url, task_id)["contextId"] == after


async def test_a_task_from_the_list_opens_as_its_conversation(server: ServerProcess, page: Page) -> None:
    await open_console(page, server.url)
    await send_and_settle(page, "an earlier question")
    await send_and_settle(page, "a later question")
    context_id = await page.get_attribute("#context", "data-context-id")
    first_id, second_id = await agent_task_ids(page)
    await page.click("#new-chat")

    # the page's own tasks are in the list with their skill, firehose or not
    row = f"#tasks li[data-task-id='{first_id}']"
    await page.wait_for_selector(f"{row}[data-state='completed'][data-skill='echo']")
    await page.click(f"{row} button")
    await wait_until(page, "() => document.querySelectorAll('#turns > li').length === 4")
    turns = await page.evaluate(READ_TURNS)
    assert [(role, text, task) for role, text, task in turns] == [
        ("user", "an earlier question", None),
        ("agent", "an earlier question", first_id),
        ("user", "a later question", None),
        ("agent", "a later question", second_id),
    ]
    assert await page.get_attribute("#context", "data-context-id") == context_id
    assert await page.get_attribute(f"{row} button", "aria-current") == "true"
    # and a follow-up resumes that conversation
    await send_and_settle(page, "the conversation goes on")
    third_id = (await agent_task_ids(page))[-1]
    assert get_task(server.url, third_id)["contextId"] == context_id


async def test_a_running_task_from_the_list_is_watched_to_the_end(server: ServerProcess, page: Page) -> None:
    prompt = "another client started this task and the console follows it from the list to the very end"
    thread, seen = send_in_background(server.url, prompt, delay_ms=150)
    try:
        await open_console(page, server.url)  # the list is seeded with ListTasks: the task is there, working
        row = f"#tasks li[data-task-id='{seen['task']}']"
        await page.wait_for_selector(f"{row}[data-state='working']")
        await page.click(f"{row} button")
        await page.wait_for_selector("#events li[data-kind='watch']", state="attached")
        samples = await samples_until_settled(page)
    finally:
        thread.join(30)
    partial = [s["text"] for s in samples if s["state"] == "working" and 0 < len(s["text"]) < len(prompt)]
    assert partial, "the watched answer did not stream"
    assert samples[-1] == {"text": prompt, "state": "completed", "error": ""}
    assert (await read_page(page))["text"] == prompt
    await page.wait_for_selector(f"{row}[data-state='completed']")


async def test_the_stats_line_says_what_the_page_measured(server: ServerProcess, page: Page) -> None:
    """echo sends no usage or timings: the page shows its own clock, labelled as such."""
    await open_console(page, server.url)
    await send_and_settle(page, "three short words", delay_ms=30)
    stats = await page.eval_on_selector_all(
        "#turns > li:last-child .stat", "spans => spans.map(s => [s.dataset.stat, s.textContent, s.title])"
    )
    keys = [key for key, _, _ in stats]
    assert keys == ["first-chunk", "elapsed"], stats
    assert all("measured in this page" in title for _, _, title in stats), stats
    assert stats[1][1].endswith("3 chunk(s)"), stats


async def test_enter_sends_and_shift_enter_starts_a_new_line(server: ServerProcess, page: Page) -> None:
    await open_console(page, server.url)
    await page.select_option("#skill", "echo")
    await page.click("#prompt")
    await page.keyboard.type("line one")
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.type("line two")
    assert await page.input_value("#prompt") == "line one\nline two"
    assert await page.evaluate(READ_TURNS) == [], "Shift+Enter sent the message"
    await page.keyboard.press("Enter")
    assert (await samples_until_settled(page))[-1]["text"] == "line one\nline two"
    assert await page.text_content("#turns > li[data-role='user'] .bubble") == "line one\nline two"
    assert await page.input_value("#prompt") == "", "the sent message stays in the box"
