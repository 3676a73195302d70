"""No single fault takes the TRUE pressure above the cap (docs/safety.md, single-fault defence).

Each case runs nausea-relief through the real `Session` path on `sim://?speed=max` with the
user's cap set to the program's own peak (12 kPa), so any overshoot is an exceedance, and
checks the plant's true level, not what any sensor said.
"""

from __future__ import annotations

import pytest

from acudevice.device import RequestRefused
from acudevice.protocol import FaultCode, Result, SafetyCapabilities
from acudevice.safety.profile import HealthProfile
from acudevice.session.runner import Session
from tests.session_helpers import NAUSEA, Watch, connector, simulated

pytestmark = [pytest.mark.sim, pytest.mark.model]

CAP_KPA = 12.0
TOLERANCE_PA = 1_000  # wristband-p1 sensor_tolerance_kpa

SINGLE_FAULTS = [
    # a main sensor reading low (the dangerous sign) and high, slow to fast
    ("drift:-0.2", FaultCode.SENSOR_MISMATCH),
    ("drift:-1", FaultCode.SENSOR_MISMATCH),
    ("drift:-4", FaultCode.SENSOR_MISMATCH),
    ("drift:0.2", FaultCode.SENSOR_MISMATCH),
    ("drift:1", FaultCode.SENSOR_MISMATCH),
    ("drift:4", FaultCode.SENSOR_MISMATCH),
    # a calibration offset beyond the sensors' agreement, both signs
    ("offset:-0.8", FaultCode.SENSOR_MISMATCH),
    ("offset:-3", None),  # also below zero: mismatch or implausible, whichever first
    ("offset:0.8", FaultCode.SENSOR_MISMATCH),
    ("offset:3", FaultCode.SENSOR_MISMATCH),
    # hardware stuck: from the start, mid-ramp, at pressure in the hold
    ("stuck-pump:0", FaultCode.STUCK_PUMP),
    ("stuck-pump:20000", FaultCode.STUCK_PUMP),
    ("stuck-pump:45000", None),  # at the cap: stuck pump or over-pressure, whichever first
    ("stuck-valve:0", FaultCode.STUCK_VALVE),
    ("stuck-valve:100000", FaultCode.STUCK_VALVE),
]


async def run_with(fault: str, seed: int) -> tuple[str, str, float]:
    url = f"sim://?speed=max&seed={seed}&fault={fault}"
    async with simulated(url) as sim:
        runner = Session(
            NAUSEA, [url], profile=HealthProfile(cap_kpa=CAP_KPA), connect=connector(sim)
        )
        Watch().follow(runner)
        result = await runner.run()
        if isinstance(result.error, RequestRefused):
            # A fault present at boot (an offset): the band refuses the session before it
            # starts, and STATUS names the fault.
            assert result.error.result is Result.FAULTED, result.error
            async with connector(sim)(url) as device:
                status = await device.status()
            return "faulted", f"refused at start: {status.fault.name}", sim.device.true_peak
        assert result.cap_level == CAP_KPA * 1000
        return result.outcome, result.detail or "", sim.device.true_peak


@pytest.mark.parametrize(("fault", "named"), SINGLE_FAULTS)
@pytest.mark.parametrize("seed", [1, 7])
async def test_single_fault_never_takes_true_pressure_above_the_cap(
    fault: str, named: FaultCode | None, seed: int
) -> None:
    outcome, detail, true_peak = await run_with(fault, seed)
    assert true_peak <= CAP_KPA * 1000 + TOLERANCE_PA, f"{fault}: true peak {true_peak:.0f} Pa"
    assert outcome == "faulted", f"{fault}: {outcome} ({detail})"
    if named is None:
        either = ("SENSOR_FAULT", "SENSOR_MISMATCH") if "offset" in fault else ("OVER", "STUCK")
        assert any(name in detail for name in either), detail
    else:
        assert named.name in detail, detail


async def test_an_offset_within_the_sensors_agreement_is_harmless() -> None:
    """Too small to tell from calibration residue, and too small to matter."""
    for fault in ("offset:-0.3", "offset:0.3"):
        outcome, _, true_peak = await run_with(fault, 3)
        assert outcome == "completed"
        assert true_peak <= CAP_KPA * 1000 + TOLERANCE_PA


@pytest.mark.parametrize("name", ["wristband-p1", "vibepad-v1"])
def test_the_simulated_firmware_advertises_every_defence_its_model_requires(name: str) -> None:
    from acudevice.conformance import required_safety
    from acudevice.plan.library import load_device
    from simulator.core.models import load_model

    required = required_safety(load_device(name))
    assert load_model(name).safety & required == required
    if name == "wristband-p1":
        assert SafetyCapabilities.DUAL_SENSOR in required, "the band has a check sensor"
