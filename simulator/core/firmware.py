"""The simulated firmware: state machine, control step, vents, faults, events, telemetry.

It follows `docs/protocol.md` sections 5, 6 and 9. The firmware sees the world only through
its `Board` (sensor reading, battery gauge); it returns an `Actuation` each step and never
reads the plant's true level. Requests are decoded and dispatched by `simulator.core.requests`;
the safety checks, and whether a fault has cleared, are its supervisor's
(`simulator.core.supervisor`); this module raises the faults they name and vents.

Time: `step(dt_ms, wall)` advances device time by `dt_ms` (the device calls it at every
event: the 100 ms control tick, a segment boundary, a safety threshold about to be crossed;
`dt_ms=0` right after a request, so the new state drives the actuator at once); schedule
playback, ramps, vent deadlines and telemetry run on device time. The watchdog alone counts
`wall` seconds (the host's clock), so an accelerated simulation does not starve it
(docs/simulator.md).
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from acudevice.protocol import (
    NO_SEGMENT,
    Event,
    FaultCode,
    FaultRaised,
    FirmwareState,
    Reason,
    ScheduleDone,
    SegmentStarted,
    StateChanged,
    VentFinished,
    VentStarted,
    encode,
)
from simulator.core.board import Board
from simulator.core.control import PressureController, SetpointLimiter, VibrationController
from simulator.core.models import SimModel
from simulator.core.plant import SAFE_ACTUATION, VENT_ACTUATION, Actuation
from simulator.core.player import Plan, Player, Stream
from simulator.core.sensor import round_half_even
from simulator.core.supervisor import SUPERVISOR_MS, Supervisor, reason_for
from simulator.core.telemetry import TelemetryOut, flag_bits
from simulator.core.upload import Upload

S = FirmwareState
ACTIVE_TELEMETRY_MS: Final = 100
QUIET_TELEMETRY_MS: Final = 1000
_ACTIVE: Final = frozenset({S.RUNNING, S.PAUSED, S.VENTING, S.FAULT})
# The states as constants: the control step compares them at every event, and mypyc
# keeps a Final in a C variable instead of looking it up in the module's dict.
_RUNNING: Final = S.RUNNING
_PAUSED: Final = S.PAUSED
_VENTING: Final = S.VENTING
_FAULT: Final = S.FAULT
_NONE: Final = FaultCode.NONE


class VentKind(Enum):
    GRACEFUL = "graceful"  # controlled ramp down, then the dump valve for the last bit
    DUMP = "dump"  # dump valve open now


class Firmware:
    def __init__(
        self,
        model: SimModel,
        board: Board,
        *,
        serial: str,
        time_scale: int,
        telemetry_factor: int = 1,
        brownout: bool = False,
        ignore_limits: bool = False,
    ) -> None:
        self.model = model
        self.board = board
        self.serial = serial
        self.time_scale = time_scale
        self.telemetry_factor = telemetry_factor
        self.controller = (
            PressureController() if model.actuator == "pressure" else VibrationController()
        )
        self.setpoint = SetpointLimiter(model.max_ramp_level_per_s)
        self.supervisor = Supervisor(model)
        self._low_battery_pct = model.battery.low_warning_pct
        self._pressure = model.actuator == "pressure"
        self._vented_level = model.vented_level
        self._max_ramp = model.max_ramp_level_per_s
        self.ignore_limits = ignore_limits
        """Test-only broken firmware (fault `ignore-limits`): SET_LIMITS is acknowledged and
        ignored. Never set outside a campaign's proof that it can fail."""
        self.outbox: list[bytes] = []
        """Encoded events and telemetry waiting to be sent, oldest first."""
        self.now_ms = 0
        self.state = S.IDLE
        self.fault = FaultCode.NONE
        self.active_cap = model.hardware_max_level
        self.limits_set = False
        self.hello_done = False
        self.upload: Upload | None = None
        self.plan: Plan | None = None
        self.player: Player | None = None
        self.stream: Stream | None = None
        self.target = 0.0
        self.measured = board.read_level()
        self.check_measured = board.read_check_level()
        self.actuation: Actuation = VENT_ACTUATION
        self.run_count = 0
        self.last_request_wall: float | None = None
        self.last_request: bytes | None = None
        self.last_response: bytes | None = None
        self._event_seq = 0
        self.telemetry = TelemetryOut()
        self._vent_kind: VentKind | None = None
        self._vent_since_ms: int | None = None
        self.dump_since_ms: int | None = None
        """Since when the dump valve has been open in this vent (the supervisor's deadline)."""
        self.last_driven_ms = -SUPERVISOR_MS
        self.tick_origin_ms = 0
        """Control ticks fall on this plus whole ticks: a run's timing is relative to its START,
        so it is the same whatever the device time the START arrived at."""
        if brownout:
            self.raise_fault(FaultCode.BROWNOUT, Reason.BOOT)

    # ------------------------------------------------------------ outputs

    def emit(self, event: Event) -> None:
        self.telemetry.flush(self.outbox)  # every sample taken before an event goes before it
        self.outbox.append(encode(event, self._event_seq))
        self._event_seq = (self._event_seq + 1) & 0xFFFF

    def take_outbox(self) -> list[bytes]:
        out, self.outbox = self.outbox, []
        return out

    def transition(self, new: FirmwareState, reason: Reason) -> None:
        old, self.state = self.state, new
        self.emit(StateChanged(old=old, new=new, reason=reason))
        self.telemetry.due_ms = self.now_ms

    def link_reset(self) -> None:
        """A new connection: HELLO and SET_LIMITS are needed again (protocol section 8), and
        single samples until the new host asks for batches; samples held for the host that
        left are dropped with it, not sent to the next one."""
        self.hello_done = False
        self.limits_set = False
        self.telemetry.reset()

    # ------------------------------------------------------------ session control

    @property
    def streaming(self) -> bool:
        return self.stream is not None

    @property
    def segment_index(self) -> int:
        if self.player is None or self.player.done:
            return NO_SEGMENT
        return self.player.index

    def ms_to_boundary(self) -> int | None:
        """Device ms until the playing segment ends, if a schedule is playing."""
        player = self.player
        if player is None or self.state is not S.RUNNING:
            return None
        return player.ms_to_boundary()

    @property
    def elapsed_ms(self) -> int:
        return self.player.elapsed_ms if self.player is not None else 0

    def _forget_session(self) -> None:
        self.upload = None
        self.plan = None
        self.player = None
        self.stream = None

    def start_schedule(self) -> None:
        assert self.plan is not None
        self.run_count += 1
        self.board.new_run(self.run_count)
        self.tick_origin_ms = self.now_ms
        self.player = Player(self.plan)
        self.setpoint.reset(0.0)
        self.transition(S.RUNNING, Reason.HOST_REQUEST)
        self.emit(SegmentStarted(index=0, elapsed_ms=0))

    def start_stream(self, level: int, ramp_ms: int) -> None:
        if self.stream is None:
            self.run_count += 1
            self.board.new_run(self.run_count)
            self.tick_origin_ms = self.now_ms
            self.setpoint.reset(0.0)
        self.stream = Stream(self.setpoint.level, level, ramp_ms, self.now_ms)
        if self.state is not S.RUNNING:
            self.transition(S.RUNNING, Reason.HOST_REQUEST)

    def set_cap(self, cap: int) -> None:
        """SET_LIMITS accepted: the new cap applies from the next step."""
        self.supervisor.over_level.set_cap(cap, measured=self.measured, now_ms=self.now_ms)
        self.active_cap = cap

    def begin_vent(self, kind: VentKind, reason: Reason) -> None:
        """STOP, ESTOP and schedule end: into VENTING (or a faster vent while VENTING)."""
        if self.state is S.VENTING and (kind is VentKind.GRACEFUL or self._vent_kind is kind):
            return
        self.emit(VentStarted(reason=reason, measured_level=self.measured))
        if self._vent_since_ms is None:
            self._vent_since_ms = self.now_ms
        self._vent_kind = kind
        self.dump_since_ms = self.now_ms if kind is VentKind.DUMP else None
        self.target = min(max(float(self.measured), 0.0), self.target)
        self._forget_session()
        if self.state is not S.VENTING:
            self.transition(S.VENTING, reason)

    def raise_fault(self, code: FaultCode, reason: Reason) -> None:
        self.emit(FaultRaised(fault=code, measured_level=self.measured))
        if self.dump_since_ms is None:
            self.emit(VentStarted(reason=reason, measured_level=self.measured))
            self._vent_since_ms = self.now_ms
            self.dump_since_ms = self.now_ms
        self._vent_kind = VentKind.DUMP
        self.fault = code
        self._forget_session()
        self.transition(S.FAULT, reason)

    def clear_fault(self) -> None:
        self.fault = FaultCode.NONE
        self._vent_kind = None
        self._vent_since_ms = None
        self.dump_since_ms = None
        self.transition(S.IDLE, Reason.HOST_REQUEST)

    # ------------------------------------------------------------ the control step

    def step(self, dt_ms: int, wall: float) -> Actuation:
        self.now_ms += dt_ms
        board = self.board
        self.measured = board.read_level()
        self.check_measured = board.read_check_level()
        if self.state is not _FAULT:
            code = self.supervisor.check(self, wall)
            if code is not _NONE:
                self.raise_fault(code, reason_for(code))
        self._actuate(dt_ms)
        self._telemetry()
        return self.actuation

    def react(self) -> None:
        """After a request: the new state drives the actuator at once, not at the next tick.
        No time passes and nothing is read, so a request that changes nothing changes nothing."""
        self._actuate(0)

    def _actuate(self, dt_ms: int) -> None:
        state = self.state
        if state is _RUNNING:
            self._run(dt_ms)
        elif state is _PAUSED:
            self.target = min(self.target, float(self.active_cap))
            self.actuation = self.controller.command(self.target, self.measured)
        elif state is _VENTING:
            self._vent(dt_ms)
        elif state is _FAULT:
            self.target = 0.0
            self.actuation = SAFE_ACTUATION
            self._note_vented()
        else:
            self.target = 0.0
            self.actuation = VENT_ACTUATION
        if self.actuation.drive > 0.0:
            self.last_driven_ms = self.now_ms

    def _follow(self, requested: float, dt_ms: int) -> None:
        level = self.setpoint.follow(requested, dt_ms / 1000.0)
        cap = float(self.active_cap)
        self.target = cap if cap < level else level  # min(level, cap), without the call
        self.actuation = self.controller.command(self.target, self.measured)

    def _run(self, dt_ms: int) -> None:
        if self.stream is not None:
            self._follow(self.stream.level(self.now_ms), dt_ms)
            return
        player = self.player
        assert player is not None
        # The clock first, then the setpoint for the moment reached: a request handled
        # between events (`react`, dt 0) then recomputes exactly what the last event did.
        for index in player.advance(dt_ms):
            self.emit(SegmentStarted(index=index, elapsed_ms=player.elapsed_ms))
        if player.done:
            self.emit(ScheduleDone(elapsed_ms=player.elapsed_ms))
            self.begin_vent(VentKind.GRACEFUL, Reason.SCHEDULE_DONE)
            self._vent(0)  # the release drives the valve from this event on
            return
        self._follow(player.target(), dt_ms)

    def _vent(self, dt_ms: int) -> None:
        if self._vent_kind is VentKind.GRACEFUL:
            rate = self._max_ramp
            self.target = max(self.target - rate * dt_ms / 1000.0, 0.0)
            if self.target > 0.0:
                command = self.controller.command(self.target, self.measured)
                if self._pressure:
                    # A release never pumps: only the valve follows the falling ramp.
                    command = Actuation(release=command.release)
                self.actuation = command
                return
            self._vent_kind = VentKind.DUMP
            self.dump_since_ms = self.now_ms
        self.target = 0.0
        self.actuation = VENT_ACTUATION
        if self._note_vented():
            self._vent_kind = None
            self.dump_since_ms = None
            self.transition(S.IDLE, Reason.VENT_DONE)

    def _note_vented(self) -> bool:
        """Emit VentFinished once the level is under the release threshold."""
        if self._vent_since_ms is None or self.measured >= self._vented_level:
            return False
        duration = self.now_ms - self._vent_since_ms
        self.emit(VentFinished(measured_level=self.measured, duration_ms=duration))
        self._vent_since_ms = None
        return True

    def set_telemetry_batch(self, batch_ms: int) -> None:
        """SET_TELEMETRY (and 0 at every HELLO)."""
        self.telemetry.set_batch(batch_ms, self.outbox)

    @property
    def batch_ms(self) -> int:
        return self.telemetry.batch_ms

    def _telemetry(self) -> None:
        now = self.now_ms
        out = self.telemetry
        if now < out.due_ms:
            out.tick(now, self.outbox)
            return
        period = ACTIVE_TELEMETRY_MS if self.state in _ACTIVE else QUIET_TELEMETRY_MS
        out.due_ms = now + period * self.telemetry_factor
        row = (
            now & 0xFFFF_FFFF,
            self.measured,
            min(round_half_even(self.target), 0xFFFF),
            int(self.state),
            self.segment_index,
            self.battery_percent,
            self.flag_bits(),
        )
        out.add(row, now, self.outbox)

    @property
    def battery_percent(self) -> int:
        percent = int(self.board.battery_charge() + 0.5)
        return 100 if percent > 100 else (0 if percent < 0 else percent)

    def flag_bits(self) -> int:
        return flag_bits(
            self.actuation,
            pressure=self._pressure,
            low_battery=self.board.battery_charge() < self._low_battery_pct,
            streaming=self.stream is not None,
        )
