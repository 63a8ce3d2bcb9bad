"""The console's layout at 1280x800 and 400x800: the streaming answer stays on screen, nothing sticks out.

Bug (issue 14): at 1280x800 the answer streamed below the fold, under the inference skill's 13-line
description, and the page did not follow it; at 400 px the temperature field overflowed its box.
Fix: the page is the viewport (the transcript scrolls inside it and follows the newest text, the
description is folded into <details>), and every row of the form wraps.

The server here runs echo, conformance and the inference skill on the tiny random-weight model of the
inference tests, so the full form (model selector, max_tokens, temperature) and the server's usage and
timings are on the page without the real model. Screenshots go to tmp_path (the path is printed).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from playwright.async_api import Browser, Page

from tests.conftest import start_server, stop_server
from tests.e2e import test_console as harness
from tests.e2e.test_console import fill_echo, new_page, open_console, samples_until_settled, screenshot
from tests.skills.inference.conftest import write_tiny_llama

if TYPE_CHECKING:
    from tests.conftest import ServerProcess

pytestmark = harness.pytestmark
browser = harness.browser  # the fixture, shared with test_console.py

VIEWPORTS = [pytest.param(1280, 800, id="1280x800"), pytest.param(400, 800, id="400x800")]

# Where the end of the streaming answer is, and the boxes it must be inside, in one evaluation.
READ_VIEW = """() => {
    const out = document.getElementById('output');
    const box = document.getElementById('transcript').getBoundingClientRect();
    const range = document.createRange();
    range.selectNodeContents(out);
    const lines = range.getClientRects();
    const end = lines.length ? lines[lines.length - 1] : out.getBoundingClientRect();
    const rect = (r) => ({top: r.top, bottom: r.bottom, left: r.left, right: r.right});
    return {
        text: out.textContent, state: document.getElementById('state').dataset.state,
        end: rect(end), answer: rect(out.getBoundingClientRect()), transcript: rect(box),
        send: rect(document.getElementById('send').getBoundingClientRect()),
        prompt: rect(document.getElementById('prompt').getBoundingClientRect()),
        vw: document.documentElement.clientWidth, vh: document.documentElement.clientHeight,
    };
}"""

# Every rendered element that sticks out of the viewport or out of its parent's box, or whose content is
# wider than itself (unless it scrolls or clips on purpose), and a page that scrolls sideways.
FIND_OVERFLOW = """() => {
    const vw = document.documentElement.clientWidth;
    const classes = (el) => typeof el.className === 'string' ? el.className.trim().split(/\\s+/).filter(Boolean) : [];
    const name = (el) => el.id ? '#' + el.id : [el.tagName.toLowerCase(), ...classes(el)].join('.');
    const span = (r) => `${r.left.toFixed(1)}..${r.right.toFixed(1)}`;
    const controls = ['INPUT', 'SELECT', 'TEXTAREA', 'BUTTON', 'OPTION'];
    const bad = [];
    for (const el of document.body.querySelectorAll('*')) {
        if (el.closest('.sr-only')) continue;
        const r = el.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) continue;  // not rendered (hidden, closed <details>)
        if (r.left < -0.5 || r.right > vw + 0.5) bad.push(`${name(el)} spans ${span(r)}, the viewport 0..${vw}`);
        const parent = el.parentElement;
        if (parent && parent !== document.body) {
            const p = parent.getBoundingClientRect();
            if (r.left < p.left - 0.5 || r.right > p.right + 0.5) {
                bad.push(`${name(el)} (${span(r)}) sticks out of ${name(parent)} (${span(p)})`);
            }
        }
        const visible = getComputedStyle(el).overflowX === 'visible';
        if (visible && !controls.includes(el.tagName) && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) {
            bad.push(`${name(el)} holds ${el.scrollWidth} px of content in ${el.clientWidth} px`);
        }
    }
    const page = document.documentElement.scrollWidth;
    if (page > vw) bad.push(`the page scrolls sideways: ${page} px wide in ${vw}`);
    return bad;
}"""


@pytest.fixture(scope="module")
def full_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """echo, conformance and inference (the tiny model by default) once /readyz says the model is loaded."""
    root = tmp_path_factory.mktemp("console-layout")
    write_tiny_llama(root / "tiny.gguf")
    models = root / "models.toml"
    # priced, so that every answer carries a cost (base units: beyond a float's 2^53 on purpose)
    models.write_text('default = "tiny"\n[models.tiny]\npath = "tiny.gguf"\ncontext_length = 512\n'
                      "price_prompt_token = 3\nprice_completion_token = 1000000000000000\n")  # fmt: skip
    env = {"A2A_INFERENCE_MODELS_FILE": str(models), "A2A_INFERENCE_THREADS": "1"}
    server = start_server(root, "--keepalive-seconds", "1", skills="echo,conformance,inference", env=env)
    try:
        deadline = time.monotonic() + 60
        while (ready := httpx.get(server.url + "/readyz", timeout=5)).status_code != 200:
            assert time.monotonic() < deadline, f"not ready: {ready.text}\n{server.log()}"
            time.sleep(0.1)
        yield server
    finally:
        stop_server(server)


async def assert_nothing_overflows(page: Page, when: str) -> None:
    bad: list[str] = await page.evaluate(FIND_OVERFLOW)
    assert bad == [], f"{when}: {bad}"


def assert_inside(inner: dict[str, float], outer: dict[str, float], what: str) -> None:
    assert inner["top"] >= outer["top"] - 1 and inner["bottom"] <= outer["bottom"] + 1, (what, inner, outer)
    assert inner["left"] >= outer["left"] - 1 and inner["right"] <= outer["right"] + 1, (what, inner, outer)


async def views_while_streaming(page: Page, shot: Path, timeout: float = 30.0) -> list[dict[str, Any]]:
    """READ_VIEW every few ms until the page settles, asserting at each sample with text that the newest text,
    the transcript and the composer are on screen; ``shot`` is taken mid-stream. The last view is the settled one.
    """
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while (view := await page.evaluate(READ_VIEW))["state"] in harness.STREAMING_STATES:
        assert time.monotonic() < deadline, f"still streaming after {timeout} s: {view}"
        if view["state"] == "working" and view["text"]:
            screen = {"top": 0, "bottom": view["vh"], "left": 0, "right": view["vw"]}
            assert_inside(view["end"], view["transcript"], "the newest text is inside the transcript")
            assert_inside(view["transcript"], screen, "the transcript is on screen")
            assert_inside(view["send"], screen, "the Send button is on screen")
            assert_inside(view["prompt"], screen, "the message box is on screen")
            if len(seen) == 15:
                await screenshot(page, shot, full_page=False)
            seen.append(view)
    lengths = [len(v["text"]) for v in seen]
    assert len(set(lengths)) >= 5, f"too few distinct moments of the stream were checked: {lengths}"
    return [*seen, view]


@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
async def test_the_answer_stays_in_view_while_it_streams(
    full_server: ServerProcess, browser: Browser, tmp_path: Path, width: int, height: int
) -> None:
    async with new_page(browser, width, height) as page:
        await open_console(page, full_server.url)
        await page.click("#skill-about summary")  # the longest description open, the worst case
        # a first turn long enough that the second one starts below where the page began
        await fill_echo(page, " ".join(f"first{i}" for i in range(120)), delay_ms=0)
        await page.click("#send")
        await samples_until_settled(page)
        prompt = " ".join(f"word{i}" for i in range(400))  # longer than the transcript is high
        await fill_echo(page, prompt, delay_ms=12)
        await page.click("#send")

        shot = tmp_path / f"console-streaming-{width}x{height}.png"
        seen = await views_while_streaming(page, shot)
        view = seen[-1]
        assert view["text"] == prompt and view["state"] == "completed", view
        # the answer grew past the transcript's height, so staying in view took following it
        assert seen[-2]["answer"]["top"] < seen[-2]["transcript"]["top"], seen[-2]
        # the document itself never scrolled: the transcript did
        assert await page.evaluate("() => document.scrollingElement.scrollTop") == 0


# how far the transcript is from its bottom, whether the "Latest" button shows, and how much text there is
READ_SCROLL = """() => {
    const box = document.getElementById('transcript');
    return {
        fromBottom: box.scrollHeight - box.scrollTop - box.clientHeight, scrollTop: box.scrollTop,
        jump: !document.getElementById('jump').hidden, text: document.getElementById('output').textContent.length,
    };
}"""


async def text_longer_than(page: Page, length: int) -> None:
    await harness.wait_until(page, f"() => document.getElementById('output').textContent.length > {length}")


async def test_scrolling_up_to_read_stops_the_following_until_latest_is_clicked(
    full_server: ServerProcess, browser: Browser
) -> None:
    async with new_page(browser) as page:
        await open_console(page, full_server.url)
        await fill_echo(page, " ".join(f"word{i}" for i in range(600)), delay_ms=15)
        await page.click("#send")
        await text_longer_than(page, 1500)
        await page.hover("#transcript")
        for _ in range(20):  # the user scrolls up to read the beginning, wheeling until it is there
            await page.mouse.wheel(0, -5000)
            if await page.evaluate("() => document.getElementById('transcript').scrollTop === 0"):
                break
            await page.wait_for_timeout(100)
        await harness.wait_until(page, "() => document.getElementById('transcript').scrollTop === 0")
        before = await page.evaluate(READ_SCROLL)
        await text_longer_than(page, before["text"] + 300)
        during = await page.evaluate(READ_SCROLL)
        assert during["scrollTop"] == 0 and during["jump"], f"the page pulled the reader down: {during}"

        await page.click("#jump")
        await text_longer_than(page, during["text"] + 300)
        after = await page.evaluate(READ_SCROLL)
        assert after["fromBottom"] < 32 and not after["jump"], f"clicking Latest did not follow again: {after}"
        await page.click("#cancel")
        await page.wait_for_selector("#state[data-state='canceled']")


@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
async def test_nothing_overflows_its_box(
    full_server: ServerProcess, browser: Browser, tmp_path: Path, width: int, height: int
) -> None:
    async with new_page(browser, width, height) as page:
        await open_console(page, full_server.url)
        await assert_nothing_overflows(page, "the empty page")

        await page.select_option("#skill", "inference")
        assert await page.is_visible("#temperature") and await page.is_visible("#model")
        models = await page.eval_on_selector_all("#model option", "options => options.map(o => [o.value, o.text])")
        assert models[0] == ["", "server default"] and ["tiny", "tiny (loaded)"] in models, models
        await assert_nothing_overflows(page, "the inference form")
        assert not await page.is_visible("#skill-description"), "the description is folded away"
        await page.click("#skill-about summary")
        await assert_nothing_overflows(page, "the inference description unfolded")

        await page.fill("#max-tokens", "48")
        await page.fill("#temperature", "0")
        await page.fill("#prompt", "hello world")
        await page.click("#send")
        assert (await samples_until_settled(page))[-1]["state"] == "completed"
        await assert_nothing_overflows(page, "an inference answer with its stats")

        await fill_echo(page, "an unbreakable " + "x" * 150 + " word in a message", delay_ms=0)
        await page.click("#send")
        await samples_until_settled(page)
        await assert_nothing_overflows(page, "a very long word")

        await fill_echo(page, "too slow", delay_ms=70_000)
        await page.click("#send")
        await page.wait_for_selector(harness.TURN_ERROR)
        await page.click("#events-panel summary")
        await assert_nothing_overflows(page, "an error and the event log")
        await screenshot(page, tmp_path / f"console-{width}x{height}.png")


async def test_an_inference_answer_shows_the_servers_usage_and_timings(
    full_server: ServerProcess, browser: Browser, tmp_path: Path
) -> None:
    async with new_page(browser) as page:
        await open_console(page, full_server.url)
        await page.select_option("#skill", "inference")
        await page.fill("#max-tokens", "24")
        await page.fill("#prompt", "hello world")
        await page.click("#send")
        assert (await samples_until_settled(page))[-1]["state"] == "completed"
        stats = dict(
            await page.eval_on_selector_all(
                "#turns > li:last-child .stat", "spans => spans.map(s => [s.dataset.stat, s.textContent])"
            )
        )
        task_id = await page.get_attribute("#turns > li:last-child", "data-task-id")
        assert task_id
        final = harness.get_task(full_server.url, task_id)["metadata"]
        timings, usage = final["timings"], final["usage"]
        # JavaScript's Math.round rounds halves up, Python's round to even (0.5 ms: "1 ms" against 0; this failed once)
        assert stats["ttft"] == f"{math.floor(timings['ttft_ms'] + 0.5)} ms to first token", stats
        # compared as numbers: JavaScript prints a whole float without ".0" (6935.0 -> "6935"; this failed once)
        assert stats["rate"].endswith(" tokens/s"), stats
        assert float(stats["rate"].removesuffix(" tokens/s")) == timings["tokens_per_second"], stats
        prompt, completion, total = usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]
        assert stats["tokens"] == f"{prompt} prompt + {completion} completion = {total} tokens", stats
        assert stats["finish"] == f"finish: {usage['finish_reason']}"
        assert stats["model"] == "tiny"
        assert usage["cost"] == str(3 * prompt + 10**15 * completion)
        assert stats["cost"] == f"cost {usage['cost']}", stats  # the final line shows the server's cost, exactly
        await screenshot(page, tmp_path / "console-inference-stats.png")
