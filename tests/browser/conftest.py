"""Browser fixtures: headless Chromium (the system's, driven by Playwright) and a live gateway.

* `live_server` (module scope): the gateway over real HTTP on 127.0.0.1 (a threaded werkzeug
  server in this process), built from the shared stack (tests/stack.py): the sandbox org
  seeded with demo data, a real Celery worker process and its own Redis database. It serves
  `/demo` (`demo_enabled`), the interviewer pages `/feedback/{token}` and the whole `/v1` API;
  `live_server.keys` holds the demo publishable and secret keys, the publishable one bound to
  both `http://127.0.0.1:<port>` and `http://localhost:<port>` so a page loaded from one calls
  the API on the other (cross-origin, CORS preflights and all).
* `browser` (session) and `page` (per test): Chromium from `ATS_GATEWAY_CHROMIUM`,
  `/usr/bin/chromium` or the PATH. Tests skip, with the reason, when no browser or no
  Playwright is installed (`.ci/install-browser` installs the browser). A failing test leaves
  a screenshot and the page's HTML in `ATS_GATEWAY_TEST_ARTIFACTS` (default: pytest's temp
  directory, `browser-artifacts/`), and the path is printed in the failure report;
  `ATS_GATEWAY_KEEP_SCREENSHOTS=1` keeps them for passing tests too (to look at the pages).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from stack import FAST_DELIVERY

from ats_gateway.api.demo import DEMO_LINKEDIN, demo_keys
from ats_gateway.embedded import free_port
from sandbox_org.server import start_in_thread

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
BROWSER_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


# --------------------------------------------------------------------------- the browser


def find_chromium() -> str | None:
    """The Chromium to drive: ATS_GATEWAY_CHROMIUM, /usr/bin/chromium, or one on the PATH."""
    configured = os.environ.get("ATS_GATEWAY_CHROMIUM")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    for name in BROWSER_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    configured = os.environ.get("ATS_GATEWAY_CHROMIUM")
    path = find_chromium()
    if path is None and configured:
        pytest.skip(f"ATS_GATEWAY_CHROMIUM={configured} is not an executable browser")
    if path is None:
        pytest.skip(
            "no Chromium found (set ATS_GATEWAY_CHROMIUM or run .ci/install-browser, which "
            "installs Debian's chromium)"
        )
    return path


@pytest.fixture(scope="session")
def browser(chromium_executable):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the Python package playwright is not installed (pip install playwright)")
    playwright = sync_playwright().start()
    try:
        instance = playwright.chromium.launch(
            executable_path=chromium_executable, headless=True, args=CHROMIUM_FLAGS
        )
    except Exception as exc:  # a browser that cannot start is an environment problem
        playwright.stop()
        pytest.skip(f"Chromium at {chromium_executable} did not start: {exc}")
    yield instance
    instance.close()
    playwright.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory) -> Path:
    configured = os.environ.get("ATS_GATEWAY_TEST_ARTIFACTS")
    base = Path(configured) if configured else tmp_path_factory.getbasetemp()
    path = base / "browser-artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def page(browser, request, artifacts_dir):
    """A fresh browser context and page; on failure, its screenshot and HTML are kept."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    console: list[str] = []
    tab.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    tab.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
    tab.console_messages = console  # type: ignore[attr-defined]
    yield tab
    report = getattr(request.node, "rep_call", None)
    failed = report is not None and report.failed
    if failed or os.environ.get("ATS_GATEWAY_KEEP_SCREENSHOTS"):
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:]
        shot = artifacts_dir / f"{stem}.png"
        try:
            tab.screenshot(path=str(shot), full_page=True)
            (artifacts_dir / f"{stem}.html").write_text(tab.content())
            (artifacts_dir / f"{stem}.console.txt").write_text("\n".join(console))
            print(f"\nbrowser artifacts: {shot} (+ .html, .console.txt)")
        except Exception as exc:  # the page may be gone; the test's own failure matters
            print(f"\ncould not save browser artifacts: {exc}")
    context.close()


# --------------------------------------------------------------------------- the live gateway


@pytest.fixture(scope="module")
def sandbox_options():
    return {"seed": "demo", "seed_jobs": 40}


@pytest.fixture(scope="module")
def live_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def stack_overrides(live_port):
    return {
        **FAST_DELIVERY,
        "public_url": f"http://127.0.0.1:{live_port}",
        "demo_enabled": True,
        "rate_limit_ip_read": "100000/minute",
        "rate_limit_ip_submit": "100000/minute",
        "rate_limit_key_read": "100000/minute",
        "rate_limit_key_submit": "100000/minute",
        "form_min_fill_seconds": 1.0,
        "delivery_window_seconds": 0.2,
        "retry_max_delay_seconds": 2,
        "delivery_lease_seconds": 15,
        # [22] the board feeds on, as `ats-gateway dev` turns them on (the tour reads one)
        "feed_key_indeed": "demo-feed-indeed",
        "feed_key_linkedin": "demo-feed-linkedin",
        **DEMO_LINKEDIN,
    }


@pytest.fixture(scope="module")
def live_server(stack_settings, gateway_app, stack_redis, worker, sandbox_org, live_port):
    """The gateway over real HTTP with the sandbox org and a real worker (see module doc)."""
    url = stack_settings.public_url
    keys = demo_keys(gateway_app)
    server = start_in_thread(gateway_app, port=live_port)
    try:
        response = requests.get(url + "/healthz", timeout=5)
        assert response.status_code == 200, response.text
        yield SimpleNamespace(
            url=url,
            # the same server under another origin: what the demo page is loaded from, so
            # its API calls (to `url`) are cross-origin like a customer's site's
            other_origin_url=f"http://localhost:{live_port}",
            app=gateway_app,
            settings=stack_settings,
            redis=stack_redis,
            keys=keys,
            publishable_key=keys["publishable"],
            secret_key=keys["secret"],
            sandbox=sandbox_org,
            worker=worker,
        )
    finally:
        server.stop()
