"""One simulated device: firmware on a board with a plant, a sensor and a battery.

`SimDevice` is synchronous and deterministic: `handle(payload, wall)` answers a request,
`step(wall)` advances device time to the next event, and `take_output()` collects the
events and telemetry produced. A clock (`simulator.clock`) decides when to step; tests may
step it directly. `wall` is only used by the firmware's watchdog.

Event-driven time: between two events the actuation is constant and the plant is solved
exactly, so the device jumps from event to event instead of taking fixed small steps. The
events are the firmware's control tick (`TICK_MS`), segment boundaries, fault onsets, the
end of a brown-out, and the moment a safety threshold the firmware watches (over-level on
either sensor, sensor disagreement) would be crossed; near such a crossing the device
steps by the model's `check_ms`, the rate at which its firmware samples its sensors. The model is
the same at every speed; only how fast wall time passes differs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from acudevice.protocol import FirmwareState, Reason
from simulator.core import requests
from simulator.core.battery import Battery
from simulator.core.faults import FaultPlan
from simulator.core.firmware import Firmware, VentKind
from simulator.core.models import MotorPhysics, SimModel, load_model
from simulator.core.plant import Actuation, Bladder, Motor, Plant
from simulator.core.sensor import Sensor

TICK_MS: Final = 100
"""The firmware's control tick, and the longest step the device takes while anything moves."""
BROWNOUT_MS: Final = 300
"""How long the supply stays too low before the firmware reboots."""
_POWERLESS: Final = Actuation(vent=True, power=False)
"""Unpowered hardware: pump off, normally-open dump valve open."""
_IDLE: Final = FirmwareState.IDLE
_RUNNING: Final = FirmwareState.RUNNING
_FAULT: Final = FirmwareState.FAULT
_VENTING: Final = FirmwareState.VENTING


@dataclass(frozen=True)
class VentReport:
    before: float
    after: float
    device_s: float


class SimDevice:
    def __init__(
        self,
        model: SimModel | str = "wristband-p1",
        *,
        seed: int = 0,
        faults: FaultPlan | None = None,
        battery: float = 100.0,
        time_scale: int = 1,
        telemetry_factor: int = 1,
        uptime_ms: int = 0,
    ) -> None:
        self.model = load_model(model) if isinstance(model, str) else model
        self._vented_level = self.model.vented_level  # read at every event: a plain int
        self._check_ms = self.model.check_ms
        self.seed = seed
        self.faults = faults or FaultPlan()
        self.time_scale = time_scale
        self.telemetry_factor = telemetry_factor
        self.serial = f"SIM-{seed:08d}"[:32]
        self.plant = self._make_plant()
        self.sensor = self._make_sensor()
        self.sensor.offset += self.faults.offset * 1000.0  # kPa or fraction -> level
        self.sensor.drift_rate_per_s = self.faults.drift_per_min * 1000.0 / 60.0
        self.check_sensor = self._make_sensor("check") if self.model.agreement_level else None
        self.battery = Battery(self.model.battery, battery)
        self.now_ms = uptime_ms
        self.first_start_ms: int | None = None
        self._down_until_ms: int | None = None
        self._brownout_done = False
        faults = self.faults
        onsets = (faults.stuck_after_ms, faults.valve_stuck_after_ms, faults.brownout_after_ms)
        self._onsets = tuple(ms for ms in onsets if ms is not None)
        self._timed_faults = bool(self._onsets)
        self.reboots = 0
        self.true_peak = 0.0
        """Highest true plant level so far: what a campaign checks against the cap."""
        self.observer: Callable[[SimDevice], None] | None = None
        """Called after every event (a campaign's probe of the true level); None: nothing."""
        self.request_observer: Callable[[bytes], None] | None = None
        """Called with every payload the powered device receives, before it is handled."""
        self.firmware = self._boot(brownout=False)
        self.firmware.now_ms = uptime_ms  # powered on long before the host connected

    def _make_plant(self) -> Plant:
        physics = self.model.physics
        if isinstance(physics, MotorPhysics):
            return Motor(physics)
        return Bladder(physics, self.model.hardware_max_level)

    def _make_sensor(self, channel: str = "main") -> Sensor:
        """A sensor with its own calibration and noise; faults are applied by the caller."""
        physics = self.model.physics
        if isinstance(physics, MotorPhysics):
            noise, offset_max, span = (
                physics.sensor_noise,
                physics.sensor_offset,
                physics.sensor_range,
            )
        else:
            noise, offset_max = physics.sensor_noise_pa, physics.sensor_offset_pa
            span = physics.sensor_range_pa
        key = "" if channel == "main" else f"{channel}:"
        calibration = _unit_interval(f"offset:{key}{self.seed}") * 2.0 - 1.0
        return Sensor(
            noise=noise,
            offset=calibration * offset_max,
            resolution=self.model.resolution_level,
            span=span,
            seed=self.seed if channel == "main" else f"{channel}:{self.seed}",
        )

    def _boot(self, *, brownout: bool) -> Firmware:
        return Firmware(
            self.model,
            self,
            serial=self.serial,
            time_scale=self.time_scale,
            telemetry_factor=self.telemetry_factor,
            brownout=brownout,
            ignore_limits=self.faults.ignore_limits,
        )

    # ------------------------------------------------------------ Board, for the firmware

    def read_level(self) -> int:
        return self.sensor.read(self.plant.level)

    def read_check_level(self) -> int | None:
        check = self.check_sensor
        return None if check is None else check.read(self.plant.level)

    def battery_charge(self) -> float:
        return self.battery.charge

    def new_run(self, run: int) -> None:
        """Each run gets its own noise stream, so idle time before it changes nothing."""
        self.sensor.reseed(f"{self.seed}:run:{run}")
        if self.check_sensor is not None:
            self.check_sensor.reseed(f"check:{self.seed}:run:{run}")
        if self.first_start_ms is None:
            self.first_start_ms = self.now_ms

    # ------------------------------------------------------------ driving the device

    @property
    def powered(self) -> bool:
        return self._down_until_ms is None

    @property
    def true_level(self) -> float:
        """The plant's real level (Pa or permille): what no firmware can read directly."""
        return self.plant.level

    @property
    def busy(self) -> bool:
        """Something is moving: a clock at speed=max runs flat out only while this holds."""
        fw = self.firmware
        state = fw.state
        if self._down_until_ms is not None or state is _RUNNING or state is _VENTING:
            return True
        return state is _FAULT and fw.measured >= self._vented_level

    def handle(self, payload: bytes, wall: float) -> bytes | None:
        if not self.powered:
            return None
        if self.request_observer is not None:
            self.request_observer(payload)
        response = requests.handle(self.firmware, payload, wall)
        self.firmware.react()
        return response

    @property
    def has_output(self) -> bool:
        return bool(self.firmware.outbox) and self._down_until_ms is None

    def take_output(self) -> list[bytes]:
        return self.firmware.take_outbox() if self._down_until_ms is None else []

    def next_event_ms(self, until_ms: int | None = None) -> int:
        """Device time of the next event (never later than `until_ms`, always later than now)."""
        now = self.now_ms
        fw = self.firmware
        nxt = now + TICK_MS - (now - fw.tick_origin_ms) % TICK_MS
        if until_ms is not None and until_ms < nxt:
            nxt = until_ms
        if self._timed_faults and self.first_start_ms is not None:
            for onset in self._onsets:
                at = self.first_start_ms + onset
                if now < at < nxt:
                    nxt = at
        if self._down_until_ms is not None:
            return max(min(nxt, self._down_until_ms), now + 1)
        state = fw.state
        player = fw.player
        if state is _RUNNING and player is not None:  # fw.ms_to_boundary(), without a call
            boundary = player.ms_to_boundary()
            if boundary is not None and 0 < boundary < nxt - now:
                nxt = now + boundary
        if state is not _FAULT:
            safety = self._safety_event_ms(nxt)
            if safety < nxt:
                nxt = safety
        return nxt if nxt > now else now + 1

    def _safety_event_ms(self, nxt: int) -> int:
        """When a threshold the firmware checks at every sample would be crossed before
        `nxt`: the model's `check_ms` after now at the earliest, as its firmware samples."""
        now = self.now_ms
        fw = self.firmware
        main, check = self.sensor, self.check_sensor
        span_s = (nxt - now) / 1000.0
        drifted = main.drift_rate_per_s * span_s
        bias = main.offset + main.drift + (0.0 if drifted < 0.0 else drifted)  # max(d, 0.0)
        if check is not None:
            if check.offset > bias:  # max(bias, check.offset)
                bias = check.offset
            if main.drift_rate_per_s:  # the two sensors drifting apart
                apart = main.offset + main.drift - check.offset
                rate = main.drift_rate_per_s
                room = (fw.supervisor.agreement.agreement - apart * (1 if rate > 0 else -1)) / abs(
                    rate
                )
                if room * 1000.0 < nxt - now:
                    nxt = now + max(math.ceil(room * 1000.0), self._check_ms)
        limit = fw.supervisor.over_level.limit - bias
        seconds = self.plant.seconds_to_reach(limit, fw.actuation)
        if seconds * 1000.0 < nxt - now:
            nxt = now + max(math.ceil(seconds * 1000.0), self._check_ms)
        return nxt

    def step(self, wall: float, until_ms: int | None = None) -> int:
        """Advance to the next event (or to `until_ms` if sooner); returns the ms taken."""
        # Attributes bound to locals: this runs once per event, thousands of times a run.
        now = self.now_ms
        dt_ms = self.next_event_ms(until_ms) - now
        dt = dt_ms / 1000.0
        fw = self.firmware
        actuation = fw.actuation if self._down_until_ms is None else _POWERLESS
        plant = self.plant
        drive = plant.step(dt, actuation)
        level = plant.level
        if level > self.true_peak:
            self.true_peak = level
        sensor = self.sensor
        if sensor.drift_rate_per_s:
            sensor.advance(dt)
        self.battery.drain(dt, fw.state is not _IDLE, drive, actuation.release > 0.0)
        self.now_ms = now + dt_ms
        if self._timed_faults:
            self._device_faults()
        if self._down_until_ms is None:
            self.firmware.step(dt_ms, wall)
        elif self._down_until_ms is not None and self.now_ms >= self._down_until_ms:
            self._down_until_ms = None
            self.reboots += 1
            self.firmware = self._boot(brownout=True)
        if self.observer is not None:
            self.observer(self)
        return dt_ms

    def run(self, wall: float, max_events: int) -> list[bytes]:
        """Up to `max_events` events back to back, stopping once the device is no longer
        busy (speed=max); the payloads they produced, oldest first. The loop runs here, in
        the model (compiled), rather than a step at a time from the caller."""
        out: list[bytes] = []
        for _ in range(max_events):
            self.step(wall)
            out += self.take_output()
            if not self.busy:
                break
        return out

    def _device_faults(self) -> None:
        if self.first_start_ms is None:
            return
        since_start = self.now_ms - self.first_start_ms
        stuck = self.faults.stuck_after_ms
        if stuck is not None and since_start >= stuck:
            self.plant.drive_stuck = True
        valve = self.faults.valve_stuck_after_ms
        if valve is not None and since_start >= valve:
            self.plant.valve_stuck = True
        brownout = self.faults.brownout_after_ms
        if brownout is not None and not self._brownout_done and since_start >= brownout:
            self._brownout_done = True
            self._down_until_ms = self.now_ms + BROWNOUT_MS
            self.firmware.outbox.clear()

    def advance(self, seconds: float, wall: float | None = None) -> list[bytes]:
        """Step for `seconds` of device time (tests, benchmarks); returns the output.

        `wall` defaults to a clock that runs with device time, so the watchdog sees time
        pass as the firmware does; pass a fixed value to hold the watchdog still.
        """
        out: list[bytes] = []
        end = self.now_ms + round(seconds * 1000)
        while self.now_ms < end:
            self.step(self.now_ms / 1000.0 if wall is None else wall, end)
            out += self.take_output()
        return out

    def power_off_vent(self, wall: float, *, limit_s: float = 30.0) -> VentReport:
        """Shutting the simulator down: vent like ESTOP and run device time until the level
        is under half the release threshold (as the normally-open valve would leave it)."""
        before = self.plant.level
        start_ms = self.now_ms
        fw = self.firmware
        at_rest = fw.state is FirmwareState.IDLE and before < self.model.vented_level
        if self.powered and not at_rest and fw.state is not FirmwareState.FAULT:
            fw.begin_vent(VentKind.DUMP, Reason.HOST_ESTOP)
        while self.now_ms - start_ms < limit_s * 1000 and (
            self.plant.level >= self.model.vented_level / 2
            or self.firmware.state is FirmwareState.VENTING
        ):
            self.step(wall)
        return VentReport(before, self.plant.level, (self.now_ms - start_ms) / 1000.0)


def _unit_interval(key: str) -> float:
    return random.Random(key).random()
