"""Status lines for people: a time stamp and one line per step."""

from __future__ import annotations

import time


def say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)
