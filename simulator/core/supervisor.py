"""The firmware's supervisor: every safety check on its own readings, and when a fault clears.

A real firmware runs these in a supervisor task beside the control loop; here `Firmware.step`
asks `check` at every event before it drives the actuator, and raises the fault it names
(vent, cut power, latch FAULT). At every event: the watchdog, the two sensors' agreement,
plausibility and the over-level limit on either sensor (the device makes an event of every
crossing of those). On the 100 ms tick: the battery and the slower monitors (stuck drive,
stuck valve, sensor at rest, vent deadline). Like the firmware, it sees only readings and
commands, never the plant's true level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from acudevice.protocol import FaultCode, FirmwareState, Reason
from simulator.core.models import SimModel
from simulator.core.monitors import (
    OverLevel,
    ReleaseWithoutFall,
    RiseWhileUndriven,
    SensorAgreement,
    ZeroAtRest,
    sensor_plausible,
)

if TYPE_CHECKING:
    from simulator.core.firmware import Firmware

WATCHDOG_S: Final = 3.0
SUPERVISOR_MS: Final = 100
"""The control tick, on which the slower checks run."""
_NEEDS_SERVICE: Final = frozenset(
    {FaultCode.STUCK_PUMP, FaultCode.VENT_TIMEOUT, FaultCode.STUCK_VALVE, FaultCode.SENSOR_MISMATCH}
)
"""Faults of the hardware itself: STOP does not clear them."""
# Constants, not `FirmwareState.X` at each call: compiled, a Final is a C variable.
_IDLE: Final = FirmwareState.IDLE
_LOADED: Final = FirmwareState.LOADED
_RUNNING: Final = FirmwareState.RUNNING
_PAUSED: Final = FirmwareState.PAUSED
_NONE: Final = FaultCode.NONE
_WATCHDOG: Final = FaultCode.WATCHDOG
_LOW_BATTERY: Final = FaultCode.LOW_BATTERY


def reason_for(code: FaultCode) -> Reason:
    """The `StateChanged` reason a fault is raised with."""
    if code is _WATCHDOG:
        return Reason.WATCHDOG
    if code is _LOW_BATTERY:
        return Reason.LOW_BATTERY
    return Reason.FAULT


class Supervisor:
    def __init__(self, model: SimModel) -> None:
        self.model = model
        self.over_level = OverLevel(model)
        self.agreement = SensorAgreement(model)
        self.rise = RiseWhileUndriven(model)
        self.zero = ZeroAtRest(model)
        self.release_check = ReleaseWithoutFall(model)
        self._battery_fault_pct = model.battery.fault_pct
        self._lowest_plausible = -model.tolerance_level
        self._vented_level = model.vented_level
        self._vent_deadline_ms = model.vent_deadline_s * 1000

    def check(self, fw: Firmware, wall: float) -> FaultCode:
        """The fault the firmware must raise now, or NONE (not called in FAULT)."""
        state = fw.state
        if (
            (state is _RUNNING or state is _PAUSED)
            and fw.last_request_wall is not None
            and wall - fw.last_request_wall > WATCHDOG_S
        ):
            return _WATCHDOG
        measured = fw.measured
        highest = measured
        check = fw.check_measured
        code = _NONE
        if check is not None:
            if check > measured:
                highest = check
            code = self.agreement.compare(measured, check, fw.now_ms)
        if code is not _NONE:
            return code
        if measured < self._lowest_plausible:
            return FaultCode.SENSOR_FAULT
        if highest > self.over_level.limit:
            return FaultCode.OVER_PRESSURE
        if (fw.now_ms - fw.tick_origin_ms) % SUPERVISOR_MS == 0:
            if fw.board.battery_charge() < self._battery_fault_pct:
                return _LOW_BATTERY
            return self._on_tick(fw)
        return _NONE

    def _on_tick(self, fw: Firmware) -> FaultCode:
        now = fw.now_ms
        measured = fw.measured
        act = fw.actuation
        self.over_level.refresh(now)
        undriven = act.power and now - fw.last_driven_ms > SUPERVISOR_MS
        code = self.rise.sample(measured, undriven=undriven)
        if code is _NONE:
            releasing = act.release >= 0.5 and (act.drive == 0.0 or not act.power)
            code = self.release_check.sample(measured, releasing=releasing, now_ms=now)
        if code is _NONE:
            state = fw.state
            at_rest = state is _IDLE or state is _LOADED
            code = self.zero.check(measured, at_rest=at_rest, now_ms=now)
        dump_since = fw.dump_since_ms
        if code is _NONE and dump_since is not None:
            overdue = now - dump_since > self._vent_deadline_ms
            if overdue and measured >= self._vented_level:
                code = FaultCode.VENT_TIMEOUT
        return code

    def fault_cleared(self, fw: Firmware) -> bool:
        """STOP in FAULT: is the cause gone? A stuck driver or a failed vent needs service."""
        if fw.fault in _NEEDS_SERVICE:
            return False
        if fw.board.battery_charge() < self._battery_fault_pct:
            return False
        if fw.measured >= self._vented_level:
            return False
        at_rest = fw.fault is FaultCode.SENSOR_FAULT
        return sensor_plausible(fw.measured, self.model, at_rest=at_rest)
