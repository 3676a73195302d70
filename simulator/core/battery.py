"""The battery: drains with the actuator, the valves and the electronics, in device time."""

from __future__ import annotations

from simulator.core.models import BatteryPhysics


class Battery:
    def __init__(self, physics: BatteryPhysics, percent: float = 100.0) -> None:
        if not 0.0 <= percent <= 100.0:
            raise ValueError(f"battery charge {percent!r} % is outside 0..100")
        self.physics = physics
        self.charge = percent
        """Charge in percent, unrounded."""
        # Per-second rates, divided once here as `drain` would divide them each call.
        self._active_per_s = physics.active_pct_per_h / 3600.0
        self._idle_per_s = physics.idle_pct_per_h / 3600.0
        self._valve_per_s = physics.valve_pct_per_min / 60.0
        self._actuator_per_min = physics.actuator_pct_per_min

    def drain(self, dt: float, active: bool, drive: float, valve_open: bool) -> None:
        """Use `dt` seconds of charge: electronics (awake if `active`), actuator at `drive`
        duty (0..1), and the bleed valve's coil if `valve_open`."""
        per_s = self._active_per_s if active else self._idle_per_s
        per_s += drive * self._actuator_per_min / 60.0
        if valve_open:
            per_s += self._valve_per_s
        charge = self.charge - per_s * dt
        self.charge = charge if charge >= 0.0 else 0.0  # max(charge, 0.0), without the call

    @property
    def percent(self) -> int:
        """What the device reports: whole percent, rounded half up."""
        return min(100, int(self.charge + 0.5))

    @property
    def low(self) -> bool:
        return self.charge < self.physics.low_warning_pct

    @property
    def too_low_to_start(self) -> bool:
        return self.charge < self.physics.start_refused_pct

    @property
    def critical(self) -> bool:
        return self.charge < self.physics.fault_pct
