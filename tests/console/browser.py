"""Headless Chromium from Debian's packages, driven by Playwright (its own browser download does not work here).

``make test`` and ``.ci/run`` install ``chromium`` when it is missing; in CI a missing browser
fails the run with what to install, elsewhere the browser tests are skipped with that reason.
Screenshots of the main pages go to ``test-artefacts/console/`` (not in git).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = Path(os.environ.get("EAIS_TEST_ARTEFACTS", REPO_ROOT / "test-artefacts")) / "console"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
MISSING = ("the browser tests need Chromium from Debian's packages: apt-get install -y chromium chromium-driver "
           "(make test does it when run as root)")


def chromium_path() -> str:
    """The browser binary, or fail (CI) / skip (elsewhere) with what to install."""
    found = os.environ.get("EAIS_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(MISSING, pytrace=False)
    pytest.skip(MISSING)


def screenshot(page, name: str) -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
