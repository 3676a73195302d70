"""The host's telemetry watch, without any device: each alarm and each non-alarm."""

from acudevice.plan.library import load_device
from acudevice.protocol import FirmwareState, TelemetryFlags
from acudevice.protocol.messages import Telemetry
from acudevice.safety.compiler import compile_program
from acudevice.safety.limits import effective_limits
from acudevice.session.monitor import ChannelMonitor
from tests.plan_helpers import program

BAND = load_device("wristband-p1")
SCHEDULE = compile_program(program(), effective_limits(BAND), BAND)
RELEASE = 2  # segment index of the first release


def sample(
    measured: int,
    *,
    segment: int = 1,
    state: FirmwareState = FirmwareState.RUNNING,
    battery: int = 80,
    t_ms: int = 0,
) -> Telemetry:
    return Telemetry(
        t_ms=t_ms,
        measured_level=measured,
        target_level=12_000,
        state=state,
        segment_index=segment,
        battery_percent=battery,
        flags=TelemetryFlags(0),
    )


def monitor() -> ChannelMonitor:
    return ChannelMonitor(SCHEDULE, cap_level=20_000, tolerance_level=1_000)


def test_within_cap_and_tolerance_is_quiet_and_peak_is_tracked() -> None:
    m = monitor()
    assert m.check(sample(20_900)) is None
    assert m.peak_level == 20_900


def test_above_cap_plus_tolerance_is_over_pressure() -> None:
    alarm = monitor().check(sample(21_001))
    assert alarm is not None and alarm.code == "over-pressure"


def test_rising_during_release_alarms_but_noise_does_not() -> None:
    m = monitor()
    assert m.check(sample(11_000, segment=RELEASE)) is None
    assert m.check(sample(9_000, segment=RELEASE)) is None
    assert m.check(sample(9_800, segment=RELEASE)) is None  # within tolerance
    alarm = m.check(sample(10_100, segment=RELEASE))
    assert alarm is not None and alarm.code == "rising-during-release"


def test_rising_in_a_ramp_is_normal() -> None:
    m = monitor()
    assert all(m.check(sample(level, segment=0)) is None for level in range(0, 12_000, 500))


def test_fault_state_and_flat_battery_alarm() -> None:
    fault = monitor().check(sample(5_000, state=FirmwareState.FAULT))
    battery = monitor().check(sample(5_000, battery=4))
    assert fault is not None and fault.code == "device-fault"
    assert battery is not None and battery.code == "low-battery"


def test_a_lowered_cap_allows_the_descent_then_holds() -> None:
    m = monitor()
    m.check(sample(12_000))
    m.lower_cap(8_400)
    assert m.check(sample(11_500)) is None, "coming down from the old level is not over-pressure"
    assert m.check(sample(9_000)) is None  # now within the new cap's tolerance
    alarm = m.check(sample(9_500))
    assert alarm is not None and alarm.code == "over-pressure"


def test_a_band_that_does_not_come_down_to_a_lowered_cap_alarms_after_its_vent_time() -> None:
    """It acknowledged SET_LIMITS but stays up: counted in device time, across the 32-bit wrap."""
    m = ChannelMonitor(SCHEDULE, 20_000, 1_000)
    start = 2**32 - 4_000  # a band on for 49.7 days: its clock wraps during the wait
    assert m.check(sample(12_000, t_ms=start)) is None
    m.lower_cap(8_400)
    assert m.check(sample(12_000, t_ms=start + 100)) is None
    assert m.check(sample(12_000, t_ms=(start + 10_100) % 2**32)) is None
    alarm = m.check(sample(12_000, t_ms=(start + 10_200) % 2**32))
    assert alarm is not None and alarm.code == "not-easing-off"


def test_a_band_that_comes_down_in_time_is_quiet() -> None:
    m = ChannelMonitor(SCHEDULE, 20_000, 1_000)
    m.lower_cap(8_400)
    assert m.check(sample(12_000, t_ms=1_000)) is None
    assert m.check(sample(9_300, t_ms=6_000)) is None
    assert m.check(sample(9_300, t_ms=30_000)) is None
