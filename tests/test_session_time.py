"""Session time from START and segment events, never from the device's uptime (pure)."""

from __future__ import annotations

import pytest

from acudevice.plan.library import load_device, load_points
from acudevice.protocol import FirmwareState, TelemetryFlags
from acudevice.protocol.messages import Telemetry
from acudevice.safety.screening import screen
from acudevice.session.recorder import Recorder
from tests.plan_helpers import program

pytestmark = pytest.mark.unit

WRAP = 0x1_0000_0000
BAND = load_device("wristband-p1")
PROGRAM = program()
VERDICT = screen(PROGRAM, BAND, load_points())


def telemetry(t_ms: int, state: FirmwareState = FirmwareState.RUNNING) -> Telemetry:
    return Telemetry(
        t_ms=t_ms % WRAP,
        measured_level=5_000,
        target_level=5_000,
        state=state,
        segment_index=0,
        battery_percent=90,
        flags=TelemetryFlags(0),
    )


def recorder() -> Recorder:
    assert VERDICT.schedule is not None
    record = Recorder(PROGRAM, None, lambda event: None)
    record.begin(VERDICT, VERDICT.schedule, ["sim://"], BAND.name, None)
    return record


@pytest.mark.parametrize("boot_ms", [0, 3 * 3_600_000, WRAP - 1_500])
def test_session_time_starts_at_zero_and_crosses_the_wrap(boot_ms: int) -> None:
    record = recorder()
    record.sample(0, telemetry(boot_ms - 500, FirmwareState.LOADED))
    assert record.plan_ms(0) == 0  # before START nothing has elapsed
    record.segment_started(0, 0)
    for k in range(40):
        record.sample(0, telemetry(boot_ms + 100 * k))
    assert record.plan_ms(0) == 3_900
    record.segment_started(0, 30_000)  # the device says the hold began at 30 s
    record.sample(0, telemetry(boot_ms + 30_000))
    record.sample(0, telemetry(boot_ms + 31_000))
    assert record.plan_ms(0) == 31_000


def test_a_pause_stops_session_time() -> None:
    record = recorder()
    record.segment_started(0, 0)
    record.sample(0, telemetry(WRAP - 200))
    record.sample(0, telemetry(WRAP + 800))
    for k in range(1, 51):  # five seconds paused, across the wrap
        record.sample(0, telemetry(WRAP + 800 + 100 * k, FirmwareState.PAUSED))
    assert record.plan_ms(0) == 1_000
    record.sample(0, telemetry(WRAP + 5_800 + 1_000))
    assert record.plan_ms(0) == 2_000
