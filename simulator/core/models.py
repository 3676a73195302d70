"""Simulated device models: the band's factory data plus the physics only a simulator needs.

The factory data (hardware maximum, ramp-rate limit, sensor resolution and tolerance) is
read from the same `profiles/devices/*.toml` the host plans against, but by the simulator
itself: firmware knows nothing of the host's plan layer. A test checks that both readings
agree. The physical constants below (pump flow, valve orifices, motor lag, battery drain)
exist only here: a real device has them in its hardware.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from acudevice.errors import NotFoundError
from acudevice.files import parsed_once, read_toml
from acudevice.paths import shipped_profiles_dir
from acudevice.protocol import Capabilities, SafetyCapabilities

FIRMWARE_VERSION = "sim-1.0"
DEFAULT_MODEL = "wristband-p1"


@dataclass(frozen=True)
class FactoryData:
    """What a device profile says of the hardware, in wire units (Pa or permille)."""

    name: str
    title: str
    actuator: Literal["pressure", "vibration"]
    hardware_max_level: int
    max_ramp_level_per_s: float
    vent_time_s: float = 0.0
    sensor_resolution_kpa: float = 0.0
    sensor_tolerance_kpa: float = 0.0
    sensor_agreement_kpa: float | None = None
    """A second, independent sensor: readings further apart than this are a fault."""

    @classmethod
    def from_profile(cls, data: dict[str, object]) -> FactoryData:
        def number(key: str) -> float:
            value = data[key]
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(f"{key} must be a number")
            return float(value)

        name, title, actuator = str(data["name"]), str(data["title"]), data["actuator"]
        if actuator == "pressure":
            return cls(
                name=name,
                title=title,
                actuator="pressure",
                hardware_max_level=round(number("hardware_max_kpa") * 1000),
                max_ramp_level_per_s=number("max_ramp_kpa_per_s") * 1000,
                vent_time_s=number("vent_time_s"),
                sensor_resolution_kpa=number("sensor_resolution_kpa"),
                sensor_tolerance_kpa=number("sensor_tolerance_kpa"),
                sensor_agreement_kpa=(
                    number("sensor_agreement_kpa") if "sensor_agreement_kpa" in data else None
                ),
            )
        intensity = data.get("intensity_range", [0.0, 1.0])
        assert isinstance(intensity, list)
        return cls(
            name=name,
            title=title,
            actuator="vibration",
            hardware_max_level=round(float(intensity[1]) * 1000),
            max_ramp_level_per_s=number("max_intensity_change_per_s") * 1000,
        )


def factory_data() -> dict[str, FactoryData]:
    """Every shipped device profile, by name; each file is read once (a fleet starts
    a thousand simulated bands)."""
    found = {}
    for path in sorted((shipped_profiles_dir() / "devices").glob("*.toml")):
        data = parsed_once("sim-factory-data", path, _read_factory_data)
        found[data.name] = data
    return found


def _read_factory_data(path: Path) -> FactoryData:
    return FactoryData.from_profile(read_toml(path))


@dataclass(frozen=True)
class PneumaticPhysics:
    """A bladder inflated by a pump, emptied by leak, a bleed valve and a dump valve (Pa, s)."""

    pump_rate_pa_s: float = 5000.0
    """Inflation rate at full pump duty into an empty bladder."""
    pump_stall_pa: float = 100000.0
    """Back-pressure at which the pump delivers nothing (flow falls linearly towards it)."""
    leak_per_s: float = 0.002
    """Leak through seams and fittings, as a fraction of pressure per second."""
    bleed_tau_s: float = 4.0
    """Time constant of the proportional release valve when fully open. It is smaller than
    the pump: with the pump stuck on, the bleed alone cannot hold pressure down."""
    vent_tau_s: float = 2.7
    """Time constant of the dump valve: 40 kPa to 2 kPa takes 2.7 s x ln 20 = 8.1 s."""
    relief_margin: float = 0.10
    """The mechanical relief valve cracks at hardware maximum x (1 + margin)."""
    relief_tau_s: float = 0.2
    sensor_noise_pa: float = 30.0
    sensor_offset_pa: float = 100.0
    """Largest calibration residual; each seed picks one within +/- this."""
    sensor_range_pa: tuple[float, float] = (-5000.0, 60000.0)


@dataclass(frozen=True)
class MotorPhysics:
    """An eccentric-mass motor whose intensity lags its drive (permille, s)."""

    spin_up_tau_s: float = 0.15
    spin_down_tau_s: float = 0.25
    brake_tau_s: float = 0.08
    sensor_noise: float = 3.0
    sensor_offset: float = 5.0
    sensor_range: tuple[float, float] = (0.0, 1100.0)


@dataclass(frozen=True)
class BatteryPhysics:
    """Drain in percent of full charge."""

    idle_pct_per_h: float = 0.5
    active_pct_per_h: float = 2.0
    """Electronics awake: any state but IDLE."""
    actuator_pct_per_min: float = 1.2
    """Pump or motor at full duty."""
    valve_pct_per_min: float = 0.1
    """A valve held open (solenoid current)."""
    low_warning_pct: float = 15.0
    """Below this the telemetry LOW_BATTERY flag is set."""
    start_refused_pct: float = 7.0
    """Below this START and SET_TARGET are refused with LOW_BATTERY."""
    fault_pct: float = 5.0
    """Below this the firmware vents and faults (LOW_BATTERY)."""


@dataclass(frozen=True)
class SimModel:
    """Everything the simulated firmware and plant need to know about one device model."""

    name: str
    title: str
    actuator: Literal["pressure", "vibration"]
    hardware_max_level: int
    """Pa or permille; SET_LIMITS above it is refused."""
    max_ramp_level_per_s: float
    """Fastest the firmware moves a streamed (SET_TARGET) setpoint, and STOP's release rate."""
    resolution_level: int
    tolerance_level: int
    """Measured above the active cap by more than this is an over-pressure fault."""
    vented_level: int
    """Below this the actuator counts as released (2 kPa / 2 % intensity)."""
    vent_deadline_s: float
    """A vent that has not reached `vented_level` by then is a VENT_TIMEOUT fault."""
    physics: PneumaticPhysics | MotorPhysics
    battery: BatteryPhysics
    agreement_level: int | None = None
    """A second, independent sensor: readings further apart than this are a fault."""
    check_ms: int = 10
    """How often the firmware samples its sensors near a safety threshold: 100 Hz for a
    bladder (seconds-long time constants), 500 Hz for a motor that spins up in 0.15 s."""
    firmware_version: str = FIRMWARE_VERSION

    @property
    def capabilities(self) -> Capabilities:
        kind = Capabilities.PRESSURE if self.actuator == "pressure" else Capabilities.VIBRATION
        extras = Capabilities.SCHEDULE_MEMORY | Capabilities.STREAMING
        return kind | extras | Capabilities.TELEMETRY_BATCH

    def trip_margin(self, level: float) -> int:
        """How far under `level` + tolerance the over-level trip must sit so that the TRUE
        level stays within it: the sensor's worst error (calibration residue, 3 sigma of
        noise, one quantum) plus the most the level can rise between two samples at full
        drive. A firmware designer sets this from the same datasheet figures."""
        ph = self.physics
        if isinstance(ph, MotorPhysics):
            error = ph.sensor_offset + 3 * ph.sensor_noise + self.resolution_level
            rise_per_s = max(1000.0 - level, 0.0) / ph.spin_up_tau_s
        else:
            error = ph.sensor_offset_pa + 3 * ph.sensor_noise_pa + self.resolution_level
            rise_per_s = ph.pump_rate_pa_s * max(1.0 - level / ph.pump_stall_pa, 0.0)
        # Never more than half the tolerance, or a band holding at its cap would trip on
        # its own noise. The motor's fast lag can need more at low caps: see docs/safety.md.
        return min(math.ceil(error + rise_per_s * self.check_ms / 1000), self.tolerance_level // 2)

    @property
    def safety(self) -> SafetyCapabilities:
        """The single-fault defences this firmware runs (INFO `safety`)."""
        bits = (
            SafetyCapabilities.ZERO_CHECK
            | SafetyCapabilities.OVER_LEVEL_CUTOFF
            | SafetyCapabilities.STUCK_DRIVE_CHECK
        )
        if self.actuator == "pressure":
            bits |= SafetyCapabilities.STUCK_VALVE_CHECK
        if self.agreement_level is not None:
            bits |= SafetyCapabilities.DUAL_SENSOR
        return bits


def _pressure_model(device: FactoryData) -> SimModel:
    physics = PneumaticPhysics()
    worst_vent_s = physics.vent_tau_s * math.log(device.hardware_max_level / 2000)
    if worst_vent_s > device.vent_time_s:
        raise ValueError(
            f"{device.name}: the simulated dump valve needs {worst_vent_s:.1f} s to vent, "
            f"the profile promises {device.vent_time_s:g} s"
        )
    return SimModel(
        name=device.name,
        title=device.title,
        actuator="pressure",
        hardware_max_level=device.hardware_max_level,
        max_ramp_level_per_s=device.max_ramp_level_per_s,
        resolution_level=max(1, round(device.sensor_resolution_kpa * 1000)),
        tolerance_level=round(device.sensor_tolerance_kpa * 1000),
        vented_level=2000,
        vent_deadline_s=device.vent_time_s,
        physics=physics,
        battery=BatteryPhysics(),
        agreement_level=(
            None
            if device.sensor_agreement_kpa is None
            else round(device.sensor_agreement_kpa * 1000)
        ),
    )


def _vibration_model(device: FactoryData) -> SimModel:
    return SimModel(
        name=device.name,
        title=device.title,
        actuator="vibration",
        hardware_max_level=device.hardware_max_level,
        max_ramp_level_per_s=device.max_ramp_level_per_s,
        resolution_level=1,
        tolerance_level=50,
        vented_level=20,
        vent_deadline_s=2.0,
        physics=MotorPhysics(),
        battery=BatteryPhysics(actuator_pct_per_min=0.6),
        check_ms=2,
    )


def load_model(name: str = DEFAULT_MODEL) -> SimModel:
    """The simulated model for a device profile name; raises `NotFoundError` for unknown."""
    known = factory_data()
    if name not in known:
        raise NotFoundError(f"unknown device model {name!r}; known models: {', '.join(known)}")
    device = known[name]
    if device.actuator == "pressure":
        return _pressure_model(device)
    return _vibration_model(device)
