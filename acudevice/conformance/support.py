"""What every conformance check shares: failing and skipping, opening a device, a
refusal, a hand-built pressure schedule and how long to wait for device time to pass.

A check raises `CheckFailed` (its text starting with "skip: " for a skip); the runner in
`acudevice.conformance.suite` turns that into a result. A failure says what was sent and what
came back, with units, and what was expected, so a firmware engineer can act on it alone.

The tolerances below are how far past a protocol limit a measurement may be and still pass;
docs/conformance.md gives each one and why, and the checks use them by name.
"""

from __future__ import annotations

from acudevice.device import Device
from acudevice.device.addresses import open_device_transport
from acudevice.plan.devices import format_level
from acudevice.plan.schedule import PhaseKind, Schedule, Segment
from acudevice.protocol import Result

VENT_TIME_TOLERANCE_S = 0.0
"""The ESTOP vent time is the device's own measurement (VentFinished.duration_ms, device
clock): no link or host delay is in it, so the limit holds exactly."""
WATCHDOG_TOLERANCE_S = 0.75
"""The watchdog is timed on the host, from sending the last request to receiving the vent:
the request's trip, the firmware's 100 ms supervisor tick, the event's trip back and the
host's scheduling, on a shared CI machine."""
CAP_TOLERANCE_LEVEL = 0
"""A lower cap limits the target before its Ack: the next STATUS shows no target above it."""


class CheckFailed(Exception):
    """A promise not kept, or (text "skip: ...") a check that does not apply."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def device_for(url: str, *, heartbeats: bool = True) -> Device:
    return Device(open_device_transport(url), heartbeat_interval_s=1.0 if heartbeats else None)


def result_of(response: object) -> Result:
    return Result(getattr(response, "result", -1))


def answer(response: object) -> str:
    """A response's result code by name, or what came back instead of one."""
    code = getattr(response, "result", None)
    if code is None:
        return type(response).__name__
    try:
        return Result(code).name
    except ValueError:
        return f"result code {code} (unknown)"


def level(device: Device, value: int) -> str:
    """A wire level as a person reads it: '6.2 kPa' or 'intensity 0.3'."""
    return format_level(value, device.info.device_model.actuator)


async def refused(device: Device, message: object, wanted: Result, sent: str = "") -> None:
    """Send `message` and expect `wanted`; `sent` says what it asked, with units."""
    response = await device.link.request(message, deadline_s=2.0)  # type: ignore[arg-type]
    expect(
        getattr(response, "result", None) == wanted,
        f"{sent or type(message).__name__} answered {answer(response)}, expected {wanted.name}",
    )


def pressure_schedule(levels: list[tuple[int, int]], cap_level: int) -> Schedule:
    """Segments from (duration_ms, to_level) pairs, starting at zero."""
    segments, t, level = [], 0, 0
    for i, (duration, to) in enumerate(levels):
        phase = (
            PhaseKind.RAMP if to > level else PhaseKind.HOLD if to == level else PhaseKind.RELEASE
        )
        segments.append(
            Segment(
                start_ms=t,
                duration_ms=duration,
                from_level=level,
                to_level=to,
                phase=phase,
                phase_index=i,
                repeat=0,
            )
        )
        t, level = t + duration, to
    return Schedule(
        program="conformance", actuator="pressure", cap_level=cap_level, segments=tuple(segments)
    )


def require_pressure(device: Device) -> None:
    """Skip a check that needs a bladder on a vibration pad."""
    if device.info.device_model.actuator != "pressure":
        raise CheckFailed("skip: pressure devices only")


async def start_schedule(device: Device, schedule: Schedule) -> None:
    """Limits, the schedule, START: a band running the schedule."""
    await device.set_limits(schedule.cap_level)
    await device.load(schedule)
    await device.start()


def wall_for(device: Device, device_s: float) -> float:
    scale = device.info.time_scale
    return 5.0 if scale == 0 else device_s / scale + 5.0
