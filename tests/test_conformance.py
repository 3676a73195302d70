"""The conformance suite passes against every simulator transport (a CI gate for firmware)."""

from __future__ import annotations

import asyncio

import pytest

from acudevice.conformance import CHECKS, check_version_negotiation, run_conformance
from acudevice.conformance.protocol_checks import check_ramp_limit_refused_not_slowed
from tests.ble_helpers import ble_rig
from tests.sim_server import serve

pytestmark = pytest.mark.wire

FRAMED_ONLY = {"bad frames ignored, stream resynchronised"}


async def assert_conformant(url: str, *, framed: bool) -> None:
    results = await run_conformance(url)
    assert [r.name for r in results] == [name for name, _ in CHECKS]
    for r in results:
        if r.name in FRAMED_ONLY and not framed:
            assert r.status == "skip", r
        else:
            assert r.status == "pass", r


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
        == "INFO ramp limit 2000/s; 2001/s refused, 2000/s accepted, in a segment and in a SET_TARGET rise"
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
