"""What every conformance check shares: failing and skipping, opening a device, a
refusal, a hand-built pressure schedule and how long to wait for device time to pass.

A check raises `CheckFailed` (its text starting with "skip: " for a skip); the runner in
`acudevice.conformance.suite` turns that into a result.
"""

from __future__ import annotations

from acudevice.device import Device
from acudevice.device.addresses import open_device_transport
from acudevice.plan.schedule import PhaseKind, Schedule, Segment
from acudevice.protocol import Result


class CheckFailed(Exception):
    """A promise not kept, or (text "skip: ...") a check that does not apply."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def device_for(url: str, *, heartbeats: bool = True) -> Device:
    return Device(open_device_transport(url), heartbeat_interval_s=1.0 if heartbeats else None)


def result_of(response: object) -> Result:
    return Result(getattr(response, "result", -1))


async def refused(device: Device, message: object, wanted: Result) -> None:
    response = await device.link.request(message, deadline_s=2.0)  # type: ignore[arg-type]
    expect(
        result_of(response) == wanted,
        f"{type(message).__name__} answered {result_of(response).name}, expected {wanted.name}",
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
