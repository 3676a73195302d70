"""The firmware's own safety checks on its sensor reading, independent of the host.

Each check is small and stateful. The supervisor (`simulator.core.supervisor`) compares
every reading with the over-level limit and the plausibility floor, and runs the slower
checks on a 100 ms tick; the firmware raises the fault they name. They see only what real
firmware sees: its commands and its sensor, never the true level of the plant.
"""

from __future__ import annotations

from typing import Final

from acudevice.protocol import FaultCode
from simulator.core.models import SimModel

_RISE_WINDOW: Final = 6
# Constants, not `FaultCode.X` at each call: compiled, a Final is a C variable.
_NONE: Final = FaultCode.NONE
_STUCK_PUMP: Final = FaultCode.STUCK_PUMP
_SENSOR_FAULT: Final = FaultCode.SENSOR_FAULT
_SENSOR_MISMATCH: Final = FaultCode.SENSOR_MISMATCH
_STUCK_VALVE: Final = FaultCode.STUCK_VALVE
"""Samples (one per 100 ms) in the rise-while-undriven window: 0.5 s."""


class OverLevel:
    """Measured above the active cap by more than the sensor tolerance, less the trip
    margin (`SimModel.trip_margin`) that keeps the true level within cap + tolerance.

    `limit` is a plain number the firmware compares every reading with. Right after the host
    lowers the cap below the present level, the firmware releases towards the new cap; for
    one vent deadline the limit is the level at that moment, so lowering the cap is a
    release, not a fault. `refresh` (every slow tick) ends that grace.
    """

    def __init__(self, model: SimModel) -> None:
        self.hardware_max = model.hardware_max_level
        self.tolerance = model.tolerance_level
        self.grace_ms = round(model.vent_deadline_s * 1000)
        self.cap = model.hardware_max_level
        self._margin = model.trip_margin
        self._grace_level = 0
        self._grace_until_ms = -1
        self._base = self.hardware_max
        """The level `limit` was last worked out for: a refresh at the same one keeps it."""
        self.limit = self.hardware_max + self.tolerance - self._margin(self.hardware_max)

    def set_cap(self, cap: int, *, measured: int, now_ms: int) -> None:
        if measured > cap:
            self._grace_level = measured
            self._grace_until_ms = now_ms + self.grace_ms
        self.cap = cap
        self.refresh(now_ms)

    def refresh(self, now_ms: int) -> None:
        limit = self.cap
        if now_ms < self._grace_until_ms:
            limit = max(limit, self._grace_level)
        limit = min(limit, self.hardware_max)
        if limit != self._base:
            self._base = limit
            self.limit = limit + self.tolerance - self._margin(limit)


class RiseWhileUndriven:
    """The level keeps rising for 0.5 s although the pump or motor is commanded off.

    Sampled every 100 ms: `sample(measured, undriven)` where `undriven` says the actuator
    was commanded off for the whole last 100 ms. That is a driver stuck on (reported as
    STUCK_PUMP for either actuator). A sensor drifting upwards faster than the threshold
    looks the same to a single sensor.
    """

    def __init__(self, model: SimModel) -> None:
        self.threshold = 400 if model.actuator == "pressure" else 40
        self._samples: list[int] = []
        """The last `_RISE_WINDOW` readings, oldest first."""

    def sample(self, measured: int, *, undriven: bool) -> FaultCode:
        samples = self._samples
        if not undriven:
            if samples:
                samples.clear()
            return _NONE
        samples.append(measured)
        if len(samples) > _RISE_WINDOW:
            del samples[0]
        if len(samples) == _RISE_WINDOW and samples[-1] - samples[0] > self.threshold:
            return _STUCK_PUMP
        return _NONE


class ZeroAtRest:
    """Vented and undriven for a whole vent deadline, the reading must be near zero.

    This is the sensor's self-test: a reading that stays up with the valve open and nothing
    driving is a sensor that drifted (SENSOR_FAULT). Residual pressure right after a vent
    is not a fault: the check waits one vent deadline.
    """

    def __init__(self, model: SimModel) -> None:
        self.tolerance = model.tolerance_level
        self.deadline_ms = round(model.vent_deadline_s * 1000)
        self._since_ms: int | None = None

    def check(self, measured: int, *, at_rest: bool, now_ms: int) -> FaultCode:
        if not at_rest:
            self._since_ms = None
            return _NONE
        if self._since_ms is None:
            self._since_ms = now_ms
        # Both signs: a sensor reading low at rest is as wrong as one reading high, and
        # the one that reads low is the one that would let the true level overshoot.
        if now_ms - self._since_ms >= self.deadline_ms and abs(measured) > self.tolerance:
            return _SENSOR_FAULT
        return _NONE


def sensor_plausible(measured: int, model: SimModel, *, at_rest: bool) -> bool:
    """A reading below zero by more than the tolerance is never physical; at rest (vented
    for a while, actuator off) it must also be near zero."""
    if measured < -model.tolerance_level:
        return False
    return not (at_rest and measured > model.tolerance_level)


class SensorAgreement:
    """The main and the check sensor must agree within the model's agreement tolerance.

    Checked every control step; a disagreement that lasts `PERSIST_MS` is SENSOR_MISMATCH.
    This is what catches a main sensor reading low (drift, offset): the controller would
    otherwise pump the true level above the cap while every reading looks fine.
    """

    PERSIST_MS = 30
    """Longer than a few noise spikes, far shorter than any drift takes to matter."""

    def __init__(self, model: SimModel) -> None:
        self.agreement = model.agreement_level or 0
        self._since_ms: int | None = None

    def compare(self, measured: int, check: int, now_ms: int) -> FaultCode:
        apart = measured - check
        agreement = self.agreement
        if -agreement <= apart <= agreement:  # abs(apart) <= agreement, without the call
            self._since_ms = None
            return _NONE
        if self._since_ms is None:
            self._since_ms = now_ms
        if now_ms - self._since_ms >= self.PERSIST_MS:
            return _SENSOR_MISMATCH
        return _NONE


class ReleaseWithoutFall:
    """The bleed valve held well open (nothing driving) for a second must lower the level.

    Sampled every 100 ms. Above `min_level` an open valve lowers the level by at least
    `1 - exp(-0.5 s / 4 s)` = 12 % per second; a valve stuck shut lowers it by the leak
    alone (0.2 %). Half of the first is the threshold: STUCK_VALVE.
    """

    WINDOW_MS = 1000
    MIN_FALL = 0.06

    def __init__(self, model: SimModel) -> None:
        self.enabled = model.actuator == "pressure"
        self.min_level = 4 * model.tolerance_level
        self._start: tuple[int, int] | None = None

    def sample(self, measured: int, *, releasing: bool, now_ms: int) -> FaultCode:
        if not (self.enabled and releasing):
            self._start = None
            return _NONE
        if self._start is None:
            self._start = (now_ms, measured)
            return _NONE
        t0, level0 = self._start
        if now_ms - t0 < self.WINDOW_MS:
            return _NONE
        self._start = (now_ms, measured)
        if level0 >= self.min_level and level0 - measured < level0 * self.MIN_FALL:
            return _STUCK_VALVE
        return _NONE
