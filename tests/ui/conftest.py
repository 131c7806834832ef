"""The dashboard on a real socket, driven by Debian's headless Chromium through chromium-driver.

One app (all 72 sample analyses, two API keys: one for every brand, one scoped to brand 101) is
served by uvicorn on 127.0.0.1 for the whole package; each test gets a fresh browser session.
Screenshots go to ``.data/ui-screenshots/`` (gitignored) for people to look at.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from functions.api import create_api
from rag_core.base.settings import ApiKey
from rag_core.context import AppContext
from tests.appkit import ROOT, RememberingEmbedder, app_context, app_settings, sample_records
from tests.azurite import Azurite

OPS_KEY = "k-ui-ops-0123456789abcdef"
BRAND_KEY = "k-ui-b101-0123456789abcdef"
SCREENSHOTS = ROOT / ".data" / "ui-screenshots"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="package")
def ctx(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory, sample_embedder: RememberingEmbedder) -> AppContext:
    keys = [ApiKey(name="ops", key=OPS_KEY), ApiKey(name="brand101", key=BRAND_KEY, brand_id=101)]
    context = app_context(app_settings(azurite, tmp_path_factory.mktemp("qdrant"), api_keys=keys), sample_embedder)
    with context.knowledge() as kb:
        for record in sample_records(100):
            kb.ingest(record)
    return context


@pytest.fixture(scope="package")
def base_url(ctx: AppContext) -> Iterator[str]:
    """The app under uvicorn on a free local port, stopped after the package's tests."""
    with serve(ctx) as url:
        yield url


@contextmanager
def serve(ctx: AppContext) -> Iterator[str]:
    """The app over ``ctx`` under uvicorn on a free local port, for as long as the block runs."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_api(lambda: ctx), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("chromium and chromium-driver are missing: run scripts/setup.sh")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--lang=ja",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()
