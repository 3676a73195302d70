"""Closed-loop control in the firmware: follow a target level with the actuator it has.

The pressure loop is proportional with a deadband: pump when the reading is below the
target, open the bleed valve when above, do nothing in between (so the pump and the valve
never fight). The vibration loop drives the motor open-loop at the target intensity; the
motor's own lag is what the host sees.

`SetpointLimiter` is the last line of the firmware's rate rule: whatever the schedule or the
host asks for, the setpoint never rises faster than the device's rated ramp. Falling is not
limited here (releasing is always safe); the valve is the limit.
"""

from __future__ import annotations

import math

from simulator.core.plant import IDLE_ACTUATION, Actuation


class PressureController:
    deadband = 100.0
    """Pa either side of the target where neither pump nor valve acts."""
    pump_full_scale = 1000.0
    """Error (Pa) below the target at which the pump runs at 100 %."""
    bleed_full_scale = 500.0
    """Error (Pa) above the target at which the bleed valve is fully open."""
    assist_below = 4000.0
    """Under this reading the bleed alone cannot follow a rated release (its flow falls
    with pressure), so a bleed saturated by the error also opens the dump valve. Above it
    the dump valve is never used for control: a stuck pump then shows as a rising level."""

    def __init__(self) -> None:
        self._target = math.nan
        self._commands: dict[int, Actuation] = {}
        """Commands for `_target` by reading: a hold sees few readings, and the same
        command object lets the plant keep its flows (pure functions of the two)."""

    def command(self, target: float, measured: int) -> Actuation:
        if target != self._target:
            self._target = target
            self._commands.clear()
        else:
            known = self._commands.get(measured)
            if known is not None:
                return known
        act = self._command(target, measured)
        self._commands[measured] = act
        return act

    def _command(self, target: float, measured: int) -> Actuation:
        error = target - measured
        if error > self.deadband:
            return Actuation(drive=min(error / self.pump_full_scale, 1.0))
        if error < -self.deadband:
            opening = -error / self.bleed_full_scale
            if opening >= 1.0:
                return Actuation(release=1.0, vent=measured < self.assist_below)
            return Actuation(release=opening)
        return IDLE_ACTUATION


class VibrationController:
    def __init__(self) -> None:
        self._last: tuple[float, Actuation] = (math.nan, IDLE_ACTUATION)

    def command(self, target: float, measured: int) -> Actuation:
        last_target, act = self._last
        if target != last_target:
            act = Actuation(drive=min(max(target / 1000.0, 0.0), 1.0))
            self._last = (target, act)
        return act


class SetpointLimiter:
    """Follows a requested level; rises at most `rate_per_s`, falls at once."""

    def __init__(self, rate_per_s: float) -> None:
        self.rate_per_s = rate_per_s
        self.level = 0.0

    def reset(self, level: float = 0.0) -> None:
        self.level = level

    def follow(self, requested: float, dt_s: float) -> float:
        if requested > self.level:
            self.level = min(requested, self.level + self.rate_per_s * dt_s)
        else:
            self.level = requested
        return self.level
