"""The conformance suite passes against every simulator transport (a CI gate for firmware)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from acudevice.conformance import CHECKS, check_version_negotiation, run_conformance
from acudevice.conformance.protocol_checks import check_ramp_limit_refused_not_slowed
from acudevice.conformance.safety_checks import (
    check_cap_refusals,
    check_lower_cap_limits_the_target_at_once,
)
from acudevice.conformance.support import (
    CAP_TOLERANCE_LEVEL,
    VENT_TIME_TOLERANCE_S,
    WATCHDOG_TOLERANCE_S,
    CheckFailed,
)
from tests.ble_helpers import ble_rig
from tests.sim_server import serve

pytestmark = pytest.mark.wire

FRAMED_ONLY = {"bad frames ignored, stream resynchronised"}
MEASURED = {"estop vent time", "watchdog vents without heartbeats"}
DOC = Path(__file__).resolve().parents[1] / "docs" / "conformance.md"


async def assert_conformant(url: str, *, framed: bool) -> None:
    results = await run_conformance(url)
    assert [r.name for r in results] == [name for name, _ in CHECKS]
    for r in results:
        if r.name in FRAMED_ONLY and not framed:
            assert r.status == "skip", r
        else:
            assert r.status == "pass", r
        if r.name in MEASURED:  # a pass says how close it came, against what
            assert "limit" in r.detail and "tolerance" in r.detail, r


async def test_in_process_simulator_is_conformant() -> None:
    await assert_conformant("sim://?speed=20", framed=False)


async def test_simulator_over_a_pseudo_terminal_is_conformant() -> None:
    with serve("--pty", "--speed", "20") as url:
        assert url.startswith("serial:///dev/")
        await assert_conformant(url, framed=True)


async def test_simulator_over_tcp_is_conformant() -> None:
    with serve("--tcp", "0", "--speed", "20") as url:
        await assert_conformant(url, framed=True)


async def test_the_ramp_limit_check_covers_a_streamed_target_on_a_streaming_band() -> None:
    detail = await check_ramp_limit_refused_not_slowed("sim://?speed=20")
    assert (
        detail
        == "INFO ramp limit 2 kPa/s; 2.001 kPa/s refused, 2 kPa/s accepted, in a segment and in a SET_TARGET rise"
    )


async def test_closing_never_hangs_when_a_reply_races_the_cancel() -> None:
    """Regression: asyncio.wait_for swallowed the heartbeat task's cancel; close() hung."""
    for _ in range(10):
        async with asyncio.timeout(5):
            await check_version_negotiation("sim://?speed=20")


async def test_simulated_band_over_ble_is_conformant() -> None:
    async with ble_rig("sim://?speed=20&seed=5") as rig:
        await rig.pair()
        await assert_conformant(rig.url(), framed=False)


def test_every_check_and_every_tolerance_is_documented() -> None:
    doc = DOC.read_text()
    for name, _ in CHECKS:
        assert f"| {name} |" in doc, name
    for constant, shown in (
        ("VENT_TIME_TOLERANCE_S", f"{VENT_TIME_TOLERANCE_S:g} s"),
        ("WATCHDOG_TOLERANCE_S", f"{WATCHDOG_TOLERANCE_S:g} s"),
        ("CAP_TOLERANCE_LEVEL", f"{CAP_TOLERANCE_LEVEL} Pa"),
    ):
        assert f"{shown} (`{constant}`)" in doc, constant


async def test_a_failure_quotes_what_was_sent_what_came_back_and_what_was_expected() -> None:
    """Firmware that acknowledges SET_LIMITS and ignores it: the failures read in kPa."""
    url = "sim://?speed=20&fault=ignore-limits"
    with pytest.raises(CheckFailed) as lowered:
        await check_lower_cap_limits_the_target_at_once(url)
    text = str(lowered.value)
    assert text.startswith("SET_LIMITS 3 kPa sent while RUNNING with the target at "), text
    assert "STATUS then reported the cap as 40 kPa, expected 3 kPa" in text
    with pytest.raises(CheckFailed) as capped:
        await check_cap_refusals(url)
    assert str(capped.value) == (
        "LOAD_BEGIN with cap 20 kPa after SET_LIMITS 10 kPa answered OK, expected ABOVE_CAP"
    )
