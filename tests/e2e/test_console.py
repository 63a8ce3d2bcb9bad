"""The web console (GET /) in a real headless browser against a real server on loopback.

Debian's ``chromium`` is driven by Playwright for Python with ``executable_path``: ``playwright install``
cannot download browsers here, and ``scripts/install-browser`` (run by ``make test``) puts Chromium at
/usr/bin/chromium. A missing browser FAILS these tests, never skips them: a console nobody tests is a
console that silently breaks.

Every wait is bounded (Playwright's default timeout, explicit deadlines in the sampling loops): a bug
must fail a test, never hang CI. The fixtures and helpers here are shared by ``test_console_*.py``
(chat, layout, the task list, the real model); screenshots go to pytest's tmp_path, whose path is printed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

if TYPE_CHECKING:
    from tests.conftest import ServerProcess

pytestmark = [
    # one browser for the module (a launch costs ~2 s); each test gets its own context and page
    pytest.mark.asyncio(loop_scope="module"),
    # tests/conftest.py start_server() passes ``log_path.open("wb")`` to Popen and never closes it; the
    # file object is freed during the first setup of the shared ``server`` fixture. Not a console problem;
    # drop this once conftest closes its log file.
    pytest.mark.filterwarnings(r"ignore:unclosed file <_io.BufferedWriter name='.*/server-\d+\.log'>:ResourceWarning"),
]

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium phones home, and this closed network refuses it.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000
STREAMING_STATES = {"opening", "connecting", "sending", "submitted", "working"}

# The page's own state, read in one evaluation so text and state are sampled at the same instant.
READ_PAGE = """() => ({
    text: document.getElementById('output')?.textContent ?? '',
    state: document.getElementById('state').dataset.state,
    error: document.querySelector('#turns > li:last-child .turn-note[data-kind="error"]')?.textContent ?? '',
})"""
# A run's error shows in its turn, where the answer would have been.
TURN_ERROR = "#turns > li:last-child .turn-note[data-kind='error']"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run scripts/install-browser (it installs Debian's chromium; "
            "`playwright install` cannot download browsers here)",
            pytrace=False,
        )
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, timeout=30_000
        )
        try:
            yield launched
        finally:
            await launched.close()


@asynccontextmanager
async def new_page(browser: Browser, width: int = 1280, height: int = 800) -> AsyncIterator[Page]:
    """A page in its own browser context; an uncaught error in the page fails the test."""
    context = await browser.new_context(viewport={"width": width, "height": height})
    tab = await context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    crashes: list[str] = []
    tab.on("pageerror", lambda exc: crashes.append(str(exc)))
    try:
        yield tab
    finally:
        await context.close()
    assert crashes == [], f"uncaught errors in the page: {crashes}"


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    async with new_page(browser) as tab:
        yield tab


async def open_console(page: Page, url: str) -> None:
    await page.goto(url + "/")
    await page.wait_for_selector("body[data-ready='true']")


async def fill_echo(page: Page, prompt: str, delay_ms: int) -> None:
    await page.select_option("#skill", "echo")
    await page.fill("#delay-ms", str(delay_ms))
    await page.fill("#prompt", prompt)


async def wait_until(page: Page, predicate: str, timeout: float = TIMEOUT_MS / 1000) -> None:
    """Polls ``predicate`` (a JS function) with ``page.evaluate``; Playwright's own ``wait_for_function``
    evaluates a string in the page, which the console's Content-Security-Policy rightly refuses."""
    deadline = time.monotonic() + timeout
    while not await page.evaluate(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")
        await asyncio.sleep(0.04)


async def read_page(page: Page) -> dict[str, Any]:
    snapshot: dict[str, Any] = await page.evaluate(READ_PAGE)
    return snapshot


async def samples_until_settled(page: Page, timeout: float = 20.0) -> list[dict[str, Any]]:
    """The output and state every 40 ms until the state leaves the streaming states."""
    samples: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snapshot = await read_page(page)
        samples.append(snapshot)
        if snapshot["state"] not in STREAMING_STATES:
            return samples
        await asyncio.sleep(0.04)
    raise AssertionError(f"the page did not settle within {timeout} s; last: {samples[-1]}")


async def screenshot(page: Page, path: Path, full_page: bool = True) -> None:
    await page.screenshot(path=str(path), full_page=full_page)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), path
    assert len(data) > 20_000, f"{path} is only {len(data)} bytes: a blank page?"
    print(f"screenshot: {path}")


def get_task(url: str, task_id: str) -> dict[str, Any]:
    """GetTask in the 1.0 dialect, as any client would ask."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": task_id}}
    answer = httpx.post(url + "/a2a", json=body, headers={"A2A-Version": "1.0"}, timeout=10).json()
    assert "result" in answer, answer
    task: dict[str, Any] = answer["result"]
    return task


def send_in_background(url: str, prompt: str, delay_ms: int) -> tuple[threading.Thread, dict[str, str]]:
    """Another client's streaming send, read to its end in a thread; ``seen["task"]`` once the task exists."""
    seen: dict[str, str] = {}
    started = threading.Event()

    def read() -> None:
        message = {
            "messageId": uuid.uuid4().hex,
            "role": "ROLE_USER",
            "parts": [{"text": prompt}],
            "metadata": {"skill": "echo", "delay_ms": delay_ms},
        }
        body = {"jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage", "params": {"message": message}}
        headers = {"A2A-Version": "1.0", "Accept": "text/event-stream"}
        with httpx.stream("POST", url + "/a2a", json=body, headers=headers, timeout=60) as response:
            for line in response.iter_lines():
                if line.startswith("data:") and '"task"' in line and "task" not in seen:
                    seen["task"] = json.loads(line[5:])["result"]["task"]["id"]
                    started.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    assert started.wait(15), "the background send never answered with a task"
    return thread, seen


async def test_the_page_loads_the_card_and_shows_the_right_fields(server: ServerProcess, page: Page) -> None:
    await open_console(page, server.url)
    skills = await page.eval_on_selector_all("#skill option", "options => options.map(o => o.value)")
    assert skills == ["echo", "conformance"]
    assert await page.is_visible("#delay-ms")
    assert not await page.is_visible("#inference-params")
    # no skill here serves models: /v1/models does not answer 200, so the model selector stays hidden
    assert not await page.is_visible("#model")
    await page.select_option("#skill", "conformance")
    assert not await page.is_visible("#delay-ms")


async def test_streamed_text_grows_then_completes(server: ServerProcess, page: Page, tmp_path: Path) -> None:
    prompt = "the console streams this prompt back to the page one word at a time, as the words arrive"
    await open_console(page, server.url)
    await fill_echo(page, prompt, delay_ms=120)
    await page.click("#send")
    samples = await samples_until_settled(page)

    partial = [s["text"] for s in samples if s["state"] == "working" and 0 < len(s["text"]) < len(prompt)]
    distinct = list(dict.fromkeys(partial))
    assert len(distinct) >= 2, f"the text did not grow while streaming: {distinct}"
    for shorter, longer in itertools.pairwise(distinct):
        assert longer.startswith(shorter) and len(longer) > len(shorter)
    assert samples[-1] == {"text": prompt, "state": "completed", "error": ""}

    kinds = await page.eval_on_selector_all("#events li", "items => items.map(li => li.dataset.kind)")
    assert kinds[:3] == ["send", "task", "status"] and "artifact" in kinds and kinds[-1] == "status"
    last_id = 1 + 1 + len(prompt.split()) + 1  # the task, working, one chunk per word, completed
    # the page shows the event number of the server's ``<task id>:<n>`` cursor
    assert await page.text_content("#events li:last-child .text") == f"#{last_id} completed"
    assert (await page.text_content("#task-id") or "").strip() not in ("", "—")
    # the conversation is a live region, announced once the answer is complete (aria-busy off)
    assert await page.get_attribute("#turns", "role") == "log"
    assert await page.get_attribute("#turns", "aria-live") == "polite"
    assert await page.get_attribute("#turns", "aria-busy") == "false"
    assert await page.is_enabled("#send") and not await page.is_enabled("#cancel")
    await screenshot(page, tmp_path / "console-completed.png")


async def test_cancel_stops_a_long_generation(server: ServerProcess, page: Page, tmp_path: Path) -> None:
    prompt = " ".join(f"word{i}" for i in range(300))  # 30 s at 100 ms a word: only a cancel ends it in time
    await open_console(page, server.url)
    await fill_echo(page, prompt, delay_ms=100)
    await page.click("#send")
    await wait_until(page, "() => document.getElementById('output').textContent.length > 20")
    await page.click("#cancel")
    await page.wait_for_selector("#state[data-state='canceled']")

    stopped = await read_page(page)
    await asyncio.sleep(1.0)  # ten more words' worth of time
    later = await read_page(page)
    assert later == stopped, "the text kept growing after the cancel"
    assert 0 < len(stopped["text"]) < len(prompt) and prompt.startswith(stopped["text"])
    assert stopped["error"] == ""
    log = await page.eval_on_selector_all("#events li", "items => items.map(li => [li.dataset.kind, li.textContent])")
    kinds = [kind for kind, _ in log]
    assert kinds.index("cancel") < kinds.index("status", kinds.index("cancel")), log
    assert log[-1][1].endswith("canceled") or log[-2][1].endswith("canceled"), log  # the stream or CancelTask first
    assert await page.is_enabled("#send") and not await page.is_enabled("#cancel")
    await screenshot(page, tmp_path / "console-canceled.png")


async def test_errors_are_shown_plainly(server: ServerProcess, page: Page) -> None:
    await open_console(page, server.url)
    await fill_echo(page, "too slow", delay_ms=70_000)
    await page.click("#send")
    await page.wait_for_selector(TURN_ERROR)
    error = await page.text_content(TURN_ERROR) or ""
    assert error.startswith("JSON-RPC error -32602: Invalid params: delay_ms must be a number"), error
    assert await page.get_attribute(TURN_ERROR, "role") == "alert"
    assert await page.is_hidden("#output"), "no empty answer box above the error"
    assert await page.is_hidden("#error"), "the page's own banner does not repeat it"
    assert await page.get_attribute("#state", "data-state") == "error"
    assert await page.is_enabled("#send")
    # nothing reached the server: the message is given back to fix and send again
    assert await page.input_value("#prompt") == "too slow"


async def test_the_favicon_is_served(server: ServerProcess, page: Page) -> None:
    icon = httpx.get(server.url + "/favicon.ico", timeout=10)
    assert icon.status_code == 200, icon.text
    assert icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO header
    await open_console(page, server.url)
    linked = await page.get_attribute("link[rel='icon']", "href")
    assert linked is not None
    response = await page.request.get(f"{server.url}/{linked}")
    assert response.status == 200 and response.headers["content-type"].startswith("image/svg+xml")


class CuttableProxy:
    """A TCP proxy on a loopback port whose ``cut()`` aborts every open connection: a real dropped stream."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> CuttableProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()

    def refuse(self) -> None:
        """Stop listening: every new connection is refused, as when the server is gone."""
        assert self._server is not None
        self._server.close()

    def cut(self) -> None:
        self.cuts += 1
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_w.transport.abort()
            return
        self._open.update((client_w, server_w))
        pipes = [
            asyncio.create_task(self._pipe(client_r, server_w)),
            asyncio.create_task(self._pipe(server_r, client_w)),
        ]
        self._pipes.update(pipes)
        try:
            # return_exceptions: a pipe canceled by __aexit__ must not make this connection's task "failed"
            await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            self._pipes.difference_update(pipes)
            for writer in (client_w, server_w):
                self._open.discard(writer)
                writer.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass  # the other direction was cut; the finally in _accept tidies up
        finally:
            writer.transport.abort()


async def test_a_dropped_stream_resumes_from_the_last_event_id(server: ServerProcess, page: Page) -> None:
    prompt = "a dropped connection must not lose or repeat a single word of this streamed answer at all"
    async with CuttableProxy(server.port) as proxy:
        proxy_url = f"http://127.0.0.1:{proxy.port}"
        await open_console(page, proxy_url)
        await fill_echo(page, prompt, delay_ms=150)
        await page.click("#send")
        await wait_until(page, "() => document.getElementById('output').textContent.split(' ').length > 3")
        proxy.cut()
        await page.wait_for_selector("#events li[data-kind='resume']", state="attached")
        samples = await samples_until_settled(page)

    assert samples[-1] == {"text": prompt, "state": "completed", "error": ""}
    resume = await page.text_content("#events li[data-kind='resume'] .text") or ""
    assert "Resuming after event" in resume, resume
    assert await page.is_hidden("#notice")


async def test_resuming_gives_up_after_bounded_attempts(server: ServerProcess, page: Page) -> None:
    async with CuttableProxy(server.port) as proxy:
        await open_console(page, f"http://127.0.0.1:{proxy.port}")
        await fill_echo(page, "nobody will hear the end of this sentence", delay_ms=300)
        await page.click("#send")
        await wait_until(page, "() => document.getElementById('output').textContent.length > 0")
        proxy.refuse()
        proxy.cut()
        # backoff 0.25 + 0.5 + 1 + 2 + 4 s, then the page gives up
        await page.wait_for_selector(TURN_ERROR, timeout=15_000)

    error = await page.text_content(TURN_ERROR) or ""
    assert error.startswith("Gave up after 5 attempts to resume task "), error
    assert await page.get_attribute("#state", "data-state") == "error"
    assert len(await page.query_selector_all("#events li[data-kind='resume']")) == 5
    assert await page.is_enabled("#send") and not await page.is_enabled("#cancel")
