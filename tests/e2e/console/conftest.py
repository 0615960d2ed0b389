"""The console in a real Chromium (Debian's, launched by path: no browser can be downloaded
here), against a real server (API + console, one container) on a real PostgreSQL.

Without Chromium the console tests are not collected, and the run ends with one line saying
how to enable them (never silently); `.ci/run` installs it (as root) when it is missing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import truncate_all

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

    from clearport.config import Settings
    from tests.support import Api, ThreadedServer

SCREENSHOTS = Path(__file__).resolve().parents[3] / "bench" / "out" / "console"
ENABLE = (
    "console browser tests skipped: no Chromium here; `apt-get install chromium` as root "
    "(.ci/run does it) or set CLEARPORT_CHROMIUM to a chromium binary to run them"
)


def chromium_path() -> str | None:
    path = os.environ.get("CLEARPORT_CHROMIUM") or shutil.which("chromium")
    return path if path is not None and Path(path).exists() else None


CHROMIUM = chromium_path()
if CHROMIUM is None:
    # Not collected at all (no seeding for nothing), and said in one line at the end.
    collect_ignore_glob = ["test_*.py"]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if CHROMIUM is None:
        terminalreporter.write_line(ENABLE, yellow=True)


@pytest.fixture(scope="session")
def console_server(database_url: str, settings: Settings) -> Iterator[ThreadedServer]:
    """The API with the console, as `clearport serve` builds it; cookies without `Secure`
    (plain HTTP on loopback: the test mode the setting exists for)."""
    from clearport.cli.asgi import build_app
    from clearport.wiring import build_container
    from tests.support import ThreadedServer
    from tests.webhook_support import webhook_settings

    # Webhook endpoints on loopback, for the seeded platform's deliveries.
    console_settings = webhook_settings(settings).model_copy(
        update={"console_cookie_secure": False}
    )
    srv = ThreadedServer(build_app(build_container(console_settings, database_url)))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def platform_api(console_server: ThreadedServer, database_url: str) -> Iterator[Api]:
    """The API of the console's server; the module's data is truncated when it ends."""
    import httpx

    from tests.support import Api

    with httpx.Client(timeout=60) as client:
        yield Api(console_server.url, database_url, client)
    truncate_all(database_url)


@pytest.fixture(scope="module")
def browser(platform_api: Api) -> Iterator[Browser]:
    # After the module's data fixtures (which may run asyncio): Playwright's sync API owns
    # the thread's event loop while it runs.
    del platform_api
    if CHROMIUM is None:  # not collected then; kept for a direct import of a test module
        pytest.skip(ENABLE)
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield launched
        launched.close()


@dataclass
class Console:
    """A browser tab signed in (or not) to the console at `url`."""

    url: str
    page: Page
    key: str = ""
    totp_secret: str = ""

    def go(self, path: str) -> Any:
        return self.page.goto(self.url + path)

    def shot(self, name: str) -> Path:
        """A full-page screenshot for review (bench/out/console/, git-ignored)."""
        target = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(target), full_page=True)
        return target


@pytest.fixture
def tab(browser: Browser, console_server: ThreadedServer) -> Iterator[Console]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    try:
        yield Console(console_server.url, context.new_page())
    finally:
        context.close()
