"""The physical plant: a pneumatic bladder or a vibration motor, stepped in device time.

Pure and deterministic: no randomness, no clocks. `step(dt, actuation)` advances the true
level (Pa or permille) by `dt` device seconds under the given actuator commands. Faults that
live in the hardware (a pump driver stuck on) are plant state, so the firmware can only see
them through the sensor, as on a real device.
"""

from __future__ import annotations

import math
from typing import Final, NamedTuple, Protocol

from simulator.core.models import MotorPhysics, PneumaticPhysics


class Actuation(NamedTuple):
    """What the firmware drives this step.

    `drive`: pump duty or motor drive, 0..1. `release`: proportional bleed valve opening,
    0..1 (ignored by a motor). `vent`: dump valve open / motor brake. `power`: the actuator
    power switch, independent of the driver; cutting it stops even a stuck driver.
    """

    drive: float = 0.0
    release: float = 0.0
    vent: bool = False
    power: bool = True


IDLE_ACTUATION: Final = Actuation()
VENT_ACTUATION: Final = Actuation(vent=True)
SAFE_ACTUATION: Final = Actuation(release=1.0, vent=True, power=False)
"""A fault: actuator power cut, and both vent paths (dump and bleed valve) open, so one
stuck valve still leaves a way out."""


class Plant(Protocol):
    level: float
    drive_stuck: bool
    valve_stuck: bool

    def step(self, dt: float, actuation: Actuation) -> float:
        """Advance by `dt` seconds; returns the drive actually applied (0..1)."""
        ...

    def effective_drive(self, actuation: Actuation) -> float: ...

    def seconds_to_reach(self, level: float, actuation: Actuation) -> float:
        """Device seconds until the level rises to `level` under this actuation (0 if it is
        there already, `inf` if it never gets there): an event the firmware must not miss."""
        ...


class Bladder:
    """Pump in, leak + bleed valve + dump valve + relief valve out.

    Every flow is linear in pressure, so one step is solved exactly:
    dP/dt = a - k P  =>  P(t + dt) = P_eq + (P - P_eq) exp(-k dt),  P_eq = a / k.

    The flows of the last actuation are kept (the device asks for them twice an event, and
    a hold repeats the same command): they depend only on the actuation and the stuck flags,
    which is why those are properties that forget them.
    """

    def __init__(self, physics: PneumaticPhysics, hardware_max_pa: float) -> None:
        self.physics = physics
        self.relief_pa = hardware_max_pa * (1 + physics.relief_margin)
        # The physics as plain floats: `_flows` reads them whenever the command changes
        # (every event of a ramp), and a pydantic attribute costs a dozen of these.
        self._pump_rate = physics.pump_rate_pa_s
        self._pump_stall = physics.pump_stall_pa
        self._leak = physics.leak_per_s
        self._bleed_tau = physics.bleed_tau_s
        self._vent_tau = physics.vent_tau_s
        self._relief_tau = physics.relief_tau_s
        self.level = 0.0
        self._drive_stuck = False
        self._valve_stuck = False
        self._memo: tuple[Actuation, float, float, float] | None = None
        self._exp: tuple[float, float, float] = (math.nan, math.nan, math.nan)

    @property
    def drive_stuck(self) -> bool:
        return self._drive_stuck

    @drive_stuck.setter
    def drive_stuck(self, stuck: bool) -> None:
        self._drive_stuck = stuck
        self._memo = None

    @property
    def valve_stuck(self) -> bool:
        """The bleed valve is stuck shut; the dump valve is a separate, working path."""
        return self._valve_stuck

    @valve_stuck.setter
    def valve_stuck(self, stuck: bool) -> None:
        self._valve_stuck = stuck
        self._memo = None

    def effective_drive(self, actuation: Actuation) -> float:
        if not actuation.power:
            return 0.0
        if self._drive_stuck:
            return 1.0
        return min(max(actuation.drive, 0.0), 1.0)

    def _flows(self, actuation: Actuation) -> tuple[float, float, float]:
        """(duty, equilibrium, k) of dP/dt = k (equilibrium - P) under this actuation."""
        memo = self._memo
        if memo is not None and memo[0] is actuation and self.level <= self.relief_pa:
            return memo[1], memo[2], memo[3]
        duty = self.effective_drive(actuation)
        release = 0.0 if self._valve_stuck else min(max(actuation.release, 0.0), 1.0)
        inflow = duty * self._pump_rate
        k = duty * self._pump_rate / self._pump_stall + self._leak
        k += release / self._bleed_tau
        if actuation.vent:
            k += 1.0 / self._vent_tau
        if self.level > self.relief_pa:
            inflow += self.relief_pa / self._relief_tau
            k += 1.0 / self._relief_tau
        else:
            self._memo = (actuation, duty, inflow / k, k)
        return duty, inflow / k, k

    def step(self, dt: float, actuation: Actuation) -> float:
        memo = self._memo  # _flows' own first lines: the device asked for them just before
        if memo is not None and memo[0] is actuation and self.level <= self.relief_pa:
            _, duty, equilibrium, k = memo
        else:
            duty, equilibrium, k = self._flows(actuation)
        k_, dt_, decay = self._exp
        if k != k_ or dt != dt_:  # a hold repeats the same k and the same tick
            decay = math.exp(-k * dt)
            self._exp = (k, dt, decay)
        self.level = max(equilibrium + (self.level - equilibrium) * decay, 0.0)
        return duty

    def seconds_to_reach(self, level: float, actuation: Actuation) -> float:
        # _first_order_time and the memo test of _flows, inline: the device asks every event.
        now = self.level
        if now >= level:
            return 0.0
        memo = self._memo
        if memo is not None and memo[0] is actuation and now <= self.relief_pa:
            equilibrium, k = memo[2], memo[3]
        else:
            _, equilibrium, k = self._flows(actuation)
        if equilibrium <= level:
            return math.inf
        return math.log((equilibrium - now) / (equilibrium - level)) / k


class Motor:
    """Intensity follows the drive with a first-order lag; braking stops it faster."""

    def __init__(self, physics: MotorPhysics) -> None:
        self.physics = physics
        self.level = 0.0
        self.drive_stuck = False
        self.valve_stuck = False
        """A motor has no valve; kept for the common interface."""

    def effective_drive(self, actuation: Actuation) -> float:
        if not actuation.power:
            return 0.0
        if self.drive_stuck:
            return 1.0
        if actuation.vent:
            return 0.0
        return min(max(actuation.drive, 0.0), 1.0)

    def _lag(self, actuation: Actuation) -> tuple[float, float, float]:
        ph = self.physics
        drive = self.effective_drive(actuation)
        goal = drive * 1000.0
        if goal > self.level:
            tau = ph.spin_up_tau_s
        elif actuation.vent or not actuation.power:
            tau = ph.brake_tau_s
        else:
            tau = ph.spin_down_tau_s
        return drive, goal, tau

    def step(self, dt: float, actuation: Actuation) -> float:
        drive, goal, tau = self._lag(actuation)
        self.level = goal + (self.level - goal) * math.exp(-dt / tau)
        return drive

    def seconds_to_reach(self, level: float, actuation: Actuation) -> float:
        _, goal, tau = self._lag(actuation)
        return _first_order_time(self.level, goal, 1.0 / tau, level)


def _first_order_time(now: float, equilibrium: float, k: float, level: float) -> float:
    """When P(t) = eq + (now - eq) exp(-k t) first reaches `level` from below."""
    if now >= level:
        return 0.0
    if equilibrium <= level:
        return math.inf
    return math.log((equilibrium - now) / (equilibrium - level)) / k
