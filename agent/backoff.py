"""Exponential backoff with jitter, bounded: how agents space their retries."""

from __future__ import annotations

import random

# Agents reconnect within a few seconds of the controller coming back, however long it was away.
DEFAULT_MAX_S = 2.0


class Backoff:
    """initial, 2x, 4x ... up to ``max_s``, each scaled by a random factor in [0.5, 1]; ``reset`` on success."""

    def __init__(self, initial_s: float = 0.25, max_s: float = DEFAULT_MAX_S, rng: random.Random | None = None) -> None:
        self._initial_s, self._max_s, self._rng = initial_s, max_s, rng or random.Random()
        self._attempt = 0

    def next_delay_s(self) -> float:
        ceiling = min(self._max_s, self._initial_s * 2**min(self._attempt, 32))
        self._attempt += 1
        return ceiling * self._rng.uniform(0.5, 1.0)  # spread reconnecting agents apart

    def reset(self) -> None:
        self._attempt = 0
