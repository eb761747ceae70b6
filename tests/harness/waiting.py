"""Waiting for a condition, with a bound: the one ``eventually`` of the test suites."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def eventually(check: Callable[[], Any], timeout_s: float = 10.0, what: str = "condition", *,
               poll_s: float = 0.02) -> Any:
    """``check()``'s first truthy value; AssertionError naming ``what`` if none comes within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        assert time.monotonic() < deadline, f"{what} not reached within {timeout_s}s"
        time.sleep(poll_s)
    return result
