"""CLI fixtures: the live EAIS API of the end-to-end tests (real uvicorn on loopback, no agents)."""

from tests.e2e.conftest import live_api, live_ctx  # noqa: F401 - shared, not copied
