"""The web UI in a real browser: Playwright driving Debian's headless Chromium.

One browser per test process (session), a fresh context and page per test; the store
(``data.build``) is built once per process and served by one real ``mltrail server``
(``site``; ``serve`` from tests/server gives a test a server of its own, as with auth).
Every page's console is watched: an error there fails the test (a test names the
errors it expects, e.g. the 400 of a bad query). A screenshot of each test's last page
is saved under pytest's temporary directory (``ui-screenshots/``), or under
``$MLTRAIL_UI_SCREENSHOTS`` when set.

Chromium comes from Debian (``apt-get install -y chromium``, see .ci/services.sh),
never from ``playwright install``; a missing browser fails the tests, never skips them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.server.conftest import serve
from tests.server.test_routes_access import launch
from tests.ui.data import UiData, build

__all__ = ["serve"]

CHROMIUM = "/usr/bin/chromium"  # Debian's package 'chromium'
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TIMEOUT_MS = 15_000  # two test processes, two browsers and their servers share 2 cores
expect.set_options(timeout=TIMEOUT_MS)


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@pytest.fixture(scope="session")
def ui_data(tmp_path_factory: pytest.TempPathFactory) -> UiData:
    base = tmp_path_factory.mktemp("ui-store")
    with _cwd(base):
        return build(base / "store")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: apt-get install -y chromium (see .ci/services.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("MLTRAIL_UI_SCREENSHOTS")
    path = Path(where) if where else tmp_path_factory.getbasetemp() / "ui-screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


class UI:
    """A page of a test's own browser context, with its console errors collected."""

    def __init__(self, page: Any, base: str, shots: Path, name: str) -> None:
        self.page = page
        self.base = base
        self.shots = shots
        self.name = re.sub(r"[^\w.-]+", "_", name)
        self.errors: list[str] = []
        self.allowed: list[re.Pattern[str]] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def goto(self, path: str) -> Any:
        """Open a page and wait until its module has wired its controls."""
        response = self.page.goto(self.base + path)
        self.page.wait_for_selector("body[data-ready]", state="attached")
        return response

    def allow(self, pattern: str) -> None:
        """Console errors matching ``pattern`` are expected (e.g. a 400 the test causes)."""
        self.allowed.append(re.compile(pattern))

    def shot(self, label: str = "") -> Path:
        path = self.shots / f"{self.name}{'-' + label if label else ''}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]

    def assert_clean(self) -> None:
        assert not self.unexpected_errors(), f"console errors: {self.unexpected_errors()}"


@pytest.fixture
def open_ui(
    browser: Any, screenshot_dir: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., UI]]:
    """``open_ui(base_url, **context_options) -> UI``: a page in a new browser context;
    at the end of the test it is screenshotted and its console must be free of errors."""
    opened: list[tuple[Any, UI]] = []

    def open_(base: str, **options: Any) -> UI:
        context = browser.new_context(viewport={"width": 1360, "height": 900}, **options)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        ui = UI(page, base, screenshot_dir, f"{request.node.name}-{len(opened)}")
        opened.append((context, ui))
        return ui

    yield open_
    for context, ui in opened:
        try:
            ui.shot()
        finally:
            context.close()
    for _, ui in opened:
        ui.assert_clean()


@pytest.fixture(scope="session")
def site(ui_data: UiData, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One ``mltrail server`` (auth off) on the session's store for every test of a
    process (``launch`` is what ``serve`` does, for a longer scope): starting one per
    test would cost seconds each on a busy machine."""
    log = tmp_path_factory.mktemp("ui-server") / "server.log"
    objects = str(Path(ui_data.store_uri.removeprefix("sqlite:///")).parent / "objects")
    with launch(ui_data.store_uri, objects, log, auth=False) as url:
        yield url
