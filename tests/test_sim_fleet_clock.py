"""Many simulated bands on one event loop share one timer (the clock hub)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from simulator.options import SimOptions
from simulator.simulation import Simulation

pytestmark = pytest.mark.sim


async def test_a_fleet_steps_in_time_on_one_timer_and_says_it_lags_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    sims = [Simulation(SimOptions.from_url(f"sim://?seed={i}&speed=10")) for i in range(20)]
    for sim in sims:
        sim.start()
    try:
        start = loop.time()
        before = [sim.device.now_ms for sim in sims]
        await asyncio.sleep(0.3)  # 3 s of device time at speed 10
        elapsed_ms = (loop.time() - start) * 10_000
        for sim, was in zip(sims, before, strict=True):
            # every device stepped with the loop's clock (a tick is 100 ms, the hub may be late)
            assert elapsed_ms - 300 <= sim.device.now_ms - was <= elapsed_ms + 100
        timers = [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
        assert len(timers) <= 2  # one hub timer (and this test's), not one per device
        with caplog.at_level(logging.WARNING, logger="simulator.clock"):
            for sim in sims:  # as if the loop had been stuck for 3 s: every band lags
                sim.clock.turn(loop.time() + 3.0)
        warnings = [r for r in caplog.records if "cannot keep up" in r.message]
        assert len(warnings) == 1
    finally:
        for sim in sims:
            await sim.stop()
