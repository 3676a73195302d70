"""The suite: every check in order, each on its own connection from a band at rest.

One check cannot leave state for the next; the band is left at rest at the end. Timings the
protocol promises (vent time, watchdog) are measured and reported, not just passed or failed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from acudevice.conformance.protocol_checks import (
    check_bad_frames_ignored_and_resynchronised,
    check_hello_starts_a_fresh_session,
    check_ramp_limit_refused_not_slowed,
    check_stop_and_estop_before_hello,
    check_unknown_opcode,
    check_version_negotiation,
)
from acudevice.conformance.safety_checks import (
    check_busy_device_refuses_a_second_program,
    check_cap_refusals,
    check_estop_vent_time,
    check_lower_cap_limits_the_target_at_once,
    check_single_fault_defences,
    check_watchdog_vents_without_heartbeats,
)
from acudevice.conformance.support import CheckFailed, device_for
from acudevice.conformance.telemetry import check_telemetry_batches
from acudevice.device import DeviceError
from acudevice.device.stopping import vent_and_clear
from acudevice.protocol import FirmwareState


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # pass, fail, skip
    detail: str


CHECKS: list[tuple[str, Callable[[str], Awaitable[str]]]] = [
    # First, so that on a freshly powered serial band no earlier HELLO can still hold.
    ("stop and estop before hello", check_stop_and_estop_before_hello),
    ("version negotiation", check_version_negotiation),
    ("unknown opcode", check_unknown_opcode),
    ("single-fault defences advertised", check_single_fault_defences),
    ("cap refusals", check_cap_refusals),
    ("busy device refuses a second program", check_busy_device_refuses_a_second_program),
    ("bad frames ignored, stream resynchronised", check_bad_frames_ignored_and_resynchronised),
    ("ramp limit in INFO, steeper segment or target refused", check_ramp_limit_refused_not_slowed),
    ("hello starts a fresh session", check_hello_starts_a_fresh_session),
    ("lower cap limits the target at once", check_lower_cap_limits_the_target_at_once),
    ("estop vent time", check_estop_vent_time),
    ("watchdog vents without heartbeats", check_watchdog_vents_without_heartbeats),
    ("telemetry batches", check_telemetry_batches),
]


async def settle(url: str) -> str | None:
    """Bring the band to rest; None when it is IDLE, else what is wrong."""
    async with device_for(url) as device:
        _, after = await vent_and_clear(device)
    if after.state == FirmwareState.IDLE:
        return None
    return f"the band is {after.state.name} ({after.fault.name}) and could not be brought to rest"


async def run_conformance(
    url: str, on_result: Callable[[CheckResult], None] | None = None
) -> list[CheckResult]:
    results = []
    for index, (name, check) in enumerate(CHECKS):
        try:
            if index > 0:  # the first check needs a band no host has greeted yet
                problem = await settle(url)
                if problem is not None:
                    raise CheckFailed(f"before the check: {problem}")
            detail = await check(url)
            result = CheckResult(name, "pass", detail)
        except CheckFailed as exc:
            text = str(exc)
            result = (
                CheckResult(name, "skip", text[6:])
                if text.startswith("skip: ")
                else CheckResult(name, "fail", text)
            )
        except (DeviceError, TimeoutError) as exc:
            result = CheckResult(name, "fail", f"{type(exc).__name__}: {exc}")
        results.append(result)
        if on_result is not None:
            on_result(result)
    try:
        problem = await settle(url)  # leave the band as it was found: at rest
    except (DeviceError, TimeoutError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    if problem is not None:
        result = CheckResult("left at rest", "fail", problem)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
