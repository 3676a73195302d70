"""The simulated hardware on its own: bladder, motor, sensor, battery, model table."""

from __future__ import annotations

import itertools
import math
import statistics

import pytest

from acudevice.errors import NotFoundError
from acudevice.plan.devices import PressureDevice
from acudevice.plan.library import load_devices
from simulator.core.battery import Battery
from simulator.core.models import BatteryPhysics, MotorPhysics, PneumaticPhysics, load_model
from simulator.core.plant import SAFE_ACTUATION, VENT_ACTUATION, Actuation, Bladder, Motor
from simulator.core.sensor import Sensor

pytestmark = [pytest.mark.sim, pytest.mark.model]

DT = 0.01


def bladder(level: float = 0.0) -> Bladder:
    plant = Bladder(PneumaticPhysics(), hardware_max_pa=40_000)
    plant.level = level
    return plant


def run(plant: Bladder | Motor, seconds: float, actuation: Actuation) -> list[float]:
    levels = []
    for _ in range(round(seconds / DT)):
        plant.step(DT, actuation)
        levels.append(plant.level)
    return levels


def test_full_vent_takes_40_kpa_under_2_kpa_within_10_s() -> None:
    levels = run(bladder(40_000), 10.0, VENT_ACTUATION)
    first_under = next(i for i, p in enumerate(levels) if p < 2_000) * DT
    assert first_under < 10.0
    # Exponential, tau about 2.7 s: one time constant leaves ~1/e, not an instant dump.
    at_tau = levels[round(2.7 / DT) - 1]
    assert 40_000 / math.e * 0.9 < at_tau < 40_000 / math.e
    assert 7.0 < first_under < 8.2


def test_pump_rise_is_bounded_and_slows_as_pressure_grows() -> None:
    plant = bladder()
    levels = run(plant, 10.0, Actuation(drive=1.0))
    rates = [(b - a) / DT for a, b in itertools.pairwise(levels)]
    assert max(rates) <= PneumaticPhysics().pump_rate_pa_s
    assert rates[100] > rates[500] > rates[900] > 0
    # It can follow the wrist band's rated 2 kPa/s ramp all the way to the default cap.
    assert all(r > 2_000 for r, p in zip(rates, levels, strict=False) if p < 20_000)


def test_leak_is_proportional_to_pressure() -> None:
    plant = bladder(20_000)
    run(plant, 10.0, Actuation())
    assert plant.level == pytest.approx(20_000 * math.exp(-PneumaticPhysics().leak_per_s * 10))


def test_bleed_valve_releases_proportionally_to_its_opening() -> None:
    half, full = bladder(12_000), bladder(12_000)
    run(half, 1.0, Actuation(release=0.5))
    run(full, 1.0, Actuation(release=1.0))
    assert 12_000 - full.level > 1.8 * (12_000 - half.level) > 0


def test_a_stuck_pump_beats_the_bleed_valve_but_not_the_relief_valve() -> None:
    plant = bladder(12_000)
    plant.drive_stuck = True
    levels = run(plant, 60.0, Actuation(release=1.0))
    assert levels[-1] > 15_000, "the bleed alone cannot hold it: the firmware must act"
    plant = bladder(12_000)
    plant.drive_stuck = True
    levels = run(plant, 120.0, Actuation())
    assert 40_000 < max(levels) < 40_000 * 1.1 + 1_000, "the mechanical relief valve caps it"


def test_cutting_actuator_power_stops_a_stuck_pump_and_the_dump_valve_vents() -> None:
    plant = bladder(30_000)
    plant.drive_stuck = True
    assert plant.effective_drive(Actuation()) == 1.0
    assert plant.effective_drive(SAFE_ACTUATION) == 0.0
    levels = run(plant, 10.0, SAFE_ACTUATION)
    assert levels[-1] < 2_000


def test_motor_spins_up_with_a_first_order_lag_and_brakes_faster() -> None:
    physics = MotorPhysics()
    motor = Motor(physics)
    levels = run(motor, 1.0, Actuation(drive=0.6))
    at_tau = levels[round(physics.spin_up_tau_s / DT) - 1]
    assert at_tau == pytest.approx(600 * (1 - math.exp(-1)), rel=0.02)
    assert levels[-1] == pytest.approx(600, abs=2)
    coasting, braking = Motor(physics), Motor(physics)
    coasting.level = braking.level = 600.0
    run(coasting, 0.2, Actuation(drive=0.0))
    run(braking, 0.2, VENT_ACTUATION)
    assert braking.level < coasting.level / 2


def test_sensor_is_quantised_seeded_and_noisy_around_the_truth() -> None:
    def make(seed: int) -> Sensor:
        return Sensor(noise=30, offset=40, resolution=50, span=(-5000, 60000), seed=seed)

    a, b, c = make(1), make(1), make(2)
    readings = [a.read(12_000) for _ in range(2000)]
    assert readings == [b.read(12_000) for _ in range(2000)]
    assert readings != [c.read(12_000) for _ in range(2000)]
    assert all(r % 50 == 0 for r in readings)
    assert statistics.mean(readings) == pytest.approx(12_040, abs=5)
    assert 20 < statistics.stdev(readings) < 45
    a.reseed("run:1")
    b.reseed("run:1")
    assert [a.read(0) for _ in range(10)] == [b.read(0) for _ in range(10)]


def test_sensor_drift_accumulates_and_the_span_saturates() -> None:
    sensor = Sensor(noise=0, offset=0, resolution=50, span=(-5000, 60000), seed=0)
    sensor.drift_rate_per_s = 100.0
    for _ in range(1000):
        sensor.advance(DT)
    assert sensor.read(0) == 1000
    assert sensor.read(1_000_000) == 60_000


def test_battery_drains_with_use_and_reports_whole_percent() -> None:
    physics = BatteryPhysics()
    idle, pumping = Battery(physics), Battery(physics)
    for _ in range(6000):
        idle.drain(DT, active=False, drive=0.0, valve_open=False)
        pumping.drain(DT, active=True, drive=1.0, valve_open=True)
    assert 100 - idle.charge == pytest.approx(0.5 / 60, rel=1e-6)
    assert 100 - pumping.charge == pytest.approx(1.2 + 0.1 + 2.0 / 60, rel=1e-6)
    low = Battery(physics, 4.9)
    assert low.critical and low.too_low_to_start and low.low and low.percent == 5
    assert not Battery(physics, 50).low
    with pytest.raises(ValueError):
        Battery(physics, 101)


def test_models_come_from_the_device_profiles() -> None:
    band = load_model("wristband-p1")
    assert band.actuator == "pressure"
    assert band.hardware_max_level == 40_000
    assert band.max_ramp_level_per_s == 2_000
    assert band.resolution_level == 50 and band.tolerance_level == 1_000
    assert band.vented_level == 2_000 and band.vent_deadline_s == 10.0
    pad = load_model("vibepad-v1")
    assert pad.actuator == "vibration" and pad.hardware_max_level == 1000
    with pytest.raises(NotFoundError, match="known models"):
        load_model("no-such-band")


def test_the_simulator_reads_the_device_profiles_as_the_planner_does() -> None:
    """Firmware and host read the same profile files separately; they must agree."""
    for device in load_devices():
        sim = load_model(device.name)
        assert sim.actuator == device.actuator
        assert sim.hardware_max_level == device.hardware_max_level
        assert sim.max_ramp_level_per_s == device.max_ramp_level_per_s
        if isinstance(device, PressureDevice):
            assert sim.tolerance_level == round(device.sensor_tolerance_kpa * 1000)
            assert sim.vent_deadline_s == device.vent_time_s
