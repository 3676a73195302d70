"""One simulated device: firmware on a board with a plant, a sensor and a battery.

`SimDevice` is synchronous and deterministic: `handle(payload, wall)` answers a request,
`step(wall)` advances device time by `DT_MS`, and `take_output()` collects the events and
telemetry produced. A clock (`simulator.clock`) decides when to step; tests may step it
directly. `wall` is only used by the firmware's watchdog.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from acudevice.protocol import FirmwareState, Reason
from simulator import requests
from simulator.battery import Battery
from simulator.faults import FaultPlan
from simulator.firmware import Firmware, VentKind
from simulator.models import MotorPhysics, SimModel, load_model
from simulator.plant import Actuation, Bladder, Motor, Plant
from simulator.sensor import Sensor

DT_MS = 10
"""The control step: 10 ms of device time."""
_DT_S = DT_MS / 1000.0
BROWNOUT_MS = 300
"""How long the supply stays too low before the firmware reboots."""
_POWERLESS = Actuation(vent=True, power=False)
"""Unpowered hardware: pump off, normally-open dump valve open."""


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
        self.seed = seed
        self.faults = faults or FaultPlan()
        self.time_scale = time_scale
        self.telemetry_factor = telemetry_factor
        self.serial = f"SIM-{seed:08d}"[:32]
        self.plant = self._make_plant()
        self.sensor = self._make_sensor()
        self.battery = Battery(self.model.battery, battery)
        self.now_ms = uptime_ms
        self.first_start_ms: int | None = None
        self._down_until_ms: int | None = None
        self._brownout_done = False
        self._timed_faults = (
            self.faults.stuck_after_ms is not None or self.faults.brownout_after_ms is not None
        )
        self.reboots = 0
        self.firmware = self._boot(brownout=False)
        self.firmware.now_ms = uptime_ms  # powered on long before the host connected

    def _make_plant(self) -> Plant:
        physics = self.model.physics
        if isinstance(physics, MotorPhysics):
            return Motor(physics)
        return Bladder(physics, self.model.hardware_max_level)

    def _make_sensor(self) -> Sensor:
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
        calibration = _unit_interval(f"offset:{self.seed}") * 2.0 - 1.0
        sensor = Sensor(
            noise=noise,
            offset=calibration * offset_max,
            resolution=self.model.resolution_level,
            span=span,
            seed=self.seed,
        )
        sensor.drift_rate_per_s = self.faults.drift_per_min * 1000.0 / 60.0
        return sensor

    def _boot(self, *, brownout: bool) -> Firmware:
        return Firmware(
            self.model,
            self,
            serial=self.serial,
            time_scale=self.time_scale,
            telemetry_factor=self.telemetry_factor,
            brownout=brownout,
        )

    # ------------------------------------------------------------ Board, for the firmware

    def read_level(self) -> int:
        return self.sensor.read(self.plant.level)

    def battery_charge(self) -> float:
        return self.battery.charge

    def new_run(self, run: int) -> None:
        """Each run gets its own noise stream, so idle time before it changes nothing."""
        self.sensor.reseed(f"{self.seed}:run:{run}")
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
        if not self.powered or fw.state in (FirmwareState.RUNNING, FirmwareState.VENTING):
            return True
        return fw.state is FirmwareState.FAULT and fw.measured >= self.model.vented_level

    def handle(self, payload: bytes, wall: float) -> bytes | None:
        if not self.powered:
            return None
        return requests.handle(self.firmware, payload, wall)

    @property
    def has_output(self) -> bool:
        return bool(self.firmware.outbox) and self.powered

    def take_output(self) -> list[bytes]:
        return self.firmware.take_outbox() if self.powered else []

    def step(self, wall: float) -> None:
        self.now_ms += DT_MS
        if self._timed_faults:
            self._device_faults()
        if self.powered:
            actuation = self.firmware.step(DT_MS, wall)
        else:
            actuation = _POWERLESS
            assert self._down_until_ms is not None
            if self.now_ms >= self._down_until_ms:
                self._down_until_ms = None
                self.reboots += 1
                self.firmware = self._boot(brownout=True)
        drive = self.plant.step(_DT_S, actuation)
        if self.sensor.drift_rate_per_s:
            self.sensor.advance(_DT_S)
        self.battery.drain(
            _DT_S, self.firmware.state is not FirmwareState.IDLE, drive, actuation.release > 0.0
        )

    def _device_faults(self) -> None:
        if self.first_start_ms is None:
            return
        since_start = self.now_ms - self.first_start_ms
        stuck = self.faults.stuck_after_ms
        if stuck is not None and since_start >= stuck:
            self.plant.drive_stuck = True
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
        for _ in range(round(seconds * 1000 / DT_MS)):
            self.step(self.now_ms / 1000.0 if wall is None else wall)
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
