"""The level sensor: true level + calibration offset + drift + gaussian noise, quantised.

The noise generator is seeded, so a seed reproduces every reading. `reseed` restarts the
noise stream (the firmware does it at START) so a run does not depend on how many idle
readings came before it.
"""

from __future__ import annotations

import math
import random
from typing import Final

_TWO_PI: Final = 2.0 * math.pi


class Sensor:
    def __init__(
        self,
        *,
        noise: float,
        offset: float,
        resolution: int,
        span: tuple[float, float],
        seed: int | str,
    ) -> None:
        self.noise = noise
        self.offset = offset
        self.resolution = resolution
        self.span = span
        self._low, self._high = span
        self.drift = 0.0
        """Accumulated drift (level units), grown by a sensor-drift fault."""
        self.drift_rate_per_s = 0.0
        self._random = random.Random(seed).random
        self._spare: float | None = None

    def reseed(self, seed: int | str) -> None:
        self._random = random.Random(seed).random
        self._spare = None

    def _normal(self) -> float:
        """`random.Random.gauss(0, 1)`'s own Box-Muller pair, drawn from the same stream
        (so the same numbers): inline, it costs a third of the library call."""
        z = self._spare
        if z is not None:
            self._spare = None
            return z
        draw = self._random
        angle = draw() * _TWO_PI
        radius = math.sqrt(-2.0 * math.log(1.0 - draw()))
        self._spare = math.sin(angle) * radius
        return math.cos(angle) * radius

    def advance(self, dt: float) -> None:
        self.drift += self.drift_rate_per_s * dt

    def read(self, true_level: float) -> int:
        raw = true_level + self.offset + self.drift + self._normal() * self.noise
        if raw < self._low:
            raw = self._low
        elif raw > self._high:
            raw = self._high
        resolution = self.resolution
        return round_half_even(raw / resolution) * resolution


def round_half_even(x: float) -> int:
    """`round(x)` for a finite float, in arithmetic mypyc compiles to C (the builtin is a
    Python call from compiled code). `x - floor(x)` is exact, so ties are found exactly."""
    whole = math.floor(x)
    part = x - whole
    if part > 0.5 or (part == 0.5 and whole % 2 == 1):
        whole += 1
    return whole
