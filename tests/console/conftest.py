"""Console fixtures: a real `eais up` cluster (the data-plane tests' fixture, shared), a headless Chromium, and
signed-in browser pages for a tenant and for an operator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controller.key_store import admin_token
from eais_cli.local_cluster import LocalCluster
from tests.console.browser import CHROMIUM_ARGS, chromium_path
from tests.dataplane.conftest import cluster  # noqa: F401 - the same `eais up` fixture, for this package
from tests.e2e.conftest import live_api, live_ctx  # noqa: F401 - a live API (no agents) for the HTTP-level tests

CONSOLE_TIMEOUT_MS = 60_000


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def console_url(cluster: LocalCluster) -> str:  # noqa: F811
    return f"http://{cluster.endpoint}/console"


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(CONSOLE_TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    context.close()


def sign_in(page, console_url: str, access_key_id: str, secret: str) -> None:
    page.goto(f"{console_url}/sign-in")
    page.fill("input[name=access_key_id]", access_key_id)
    page.fill("input[name=access_key_secret]", secret)
    page.click("button[type=submit]")


def sign_in_operator(page, console_url: str, cluster: LocalCluster) -> None:  # noqa: F811
    page.goto(f"{console_url}/operator/sign-in")
    page.fill("input[name=admin_token]", admin_token(cluster.ctx.settings))
    page.click("button[type=submit]")
