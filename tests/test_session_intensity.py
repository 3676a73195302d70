"""Lowering a running session's intensity: only down, never a comfort maximum."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from acudevice.protocol import FirmwareState
from acudevice.store import Journal
from tests.session_helpers import Watch, session, simulated

pytestmark = [pytest.mark.sim, pytest.mark.looptime]


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "journal.sqlite3") as j:
        yield j


async def test_intensity_lowers_the_cap_without_recording_a_comfort_maximum(
    journal: Journal,
) -> None:
    async with simulated("sim://?speed=20") as sim:
        watch = Watch()
        runner = session(sim, journal, watch)
        assert await runner.lower_intensity(50) == "no session is running"
        task = asyncio.create_task(runner.run())
        await watch.until(lambda: any(phase == "hold" for _, phase, _, _ in watch.views))
        assert sim.device.true_level > 10_000
        refusal = await runner.lower_intensity(100)  # full intensity already: nothing to lower
        assert refusal is not None and "can only be lowered" in refusal
        assert await runner.lower_intensity(50) is None
        assert watch.view is not None
        full = watch.view.full_level
        assert full == 12_000  # the plan's peak, below the 20 kPa cap
        half = round(full / 2)
        await watch.until(lambda: sim.device.true_level < half + 500)
        assert watch.view.cap_level == half == runner.cap_level
        refusal = await runner.lower_intensity(60)
        assert refusal is not None and "can only be lowered" in refusal
        refusal = await runner.lower_intensity(50)
        assert refusal is not None and "can only be lowered" in refusal
        assert watch.view.cap_level == half
        # It holds through the next plateau: the band never climbs back above half.
        views = len(watch.views)
        await watch.until(lambda: len(watch.views) > views + 40)
        assert sim.device.true_level < half + 500
        runner.stop()
        result = await task
    assert result.outcome == "stopped"
    assert result.comfort_level is None
    assert journal.comfort_max("pressure") == {}
    assert journal.comfort_events(result.session_id) == []
    # Journalled as it happened, so history, export and the report step the cap down there.
    [change] = journal.intensity_changes(result.session_id)
    assert (change.percent, change.level) == (50, half)
    assert change.t_ms is not None and 30_000 <= change.t_ms < 90_000  # in the first hold
    [step] = journal.cap_changes(result.session_id)
    assert (step.cause, step.previous, step.level, step.t_ms) == (
        "intensity",
        20_000,
        half,
        change.t_ms,
    )
    with pytest.raises(ValueError, match="1-100"):
        await runner.lower_intensity(0)


async def test_a_lowered_intensity_survives_a_link_drop_and_reconnect(journal: Journal) -> None:
    async with simulated("sim://?speed=20&fault=drop:2500") as sim:
        watch = Watch()
        runner = session(sim, journal, watch, reconnect_attempts=2)
        task = asyncio.create_task(runner.run())
        await watch.until(lambda: len(watch.views) > 2)
        assert watch.view is not None
        half = round(watch.view.full_level / 2)
        assert await runner.lower_intensity(50) is None
        assert sim.device.firmware.active_cap == half
        await watch.until(lambda: any("restarting repeat" in n for n in watch.notes), within_s=30)
        await watch.until(lambda: sim.device.firmware.state is FirmwareState.RUNNING)
        assert sim.device.firmware.active_cap == half, "the restarted repeat keeps the lower cap"
        await watch.until(lambda: sim.device.true_level > half - 1_000, within_s=30)
        assert sim.device.true_level < half + 500
        runner.stop()
        result = await task
    assert result.outcome == "stopped" and result.comfort_level is None
