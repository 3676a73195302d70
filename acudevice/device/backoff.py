"""Jittered exponential backoff, so a fleet of gateways does not reconnect in lock-step."""

from __future__ import annotations

import random


class Backoff:
    def __init__(
        self, initial_s: float = 1.0, maximum_s: float = 60.0, rng: random.Random | None = None
    ) -> None:
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self._rng = rng or random.Random()
        self._next = initial_s

    def reset(self) -> None:
        self._next = self.initial_s

    def delay(self) -> float:
        """The next wait: uniform in [d/2, d], d doubling from `initial_s` up to `maximum_s`."""
        d = self._next
        self._next = min(self._next * 2, self.maximum_s)
        return self._rng.uniform(d / 2, d)
