""" "Too strong" drops at once, from what was felt, on a ramp, a hold and a release.

Regression (issue 21): pressed at 4.4-5 kPa on a rising ramp, the band went on rising to
8.4 kPa (70 % of the repeat's planned plateau). The new cap is 70 % of the level measured
when pressed, and the band's true level never rises after the press.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from acudevice.session.events import CapLowered, Progress
from acudevice.store import Journal
from tests.session_helpers import Watch, session, simulated

pytestmark = [pytest.mark.sim, pytest.mark.looptime]

NOISE_PA = 100
"""The plant's true level may not rise by more than this after the press (pump inertia)."""


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "journal.sqlite3") as j:
        yield j


def pressed_when(phase: str, at_least: int) -> object:
    def ready(event: object) -> bool:
        if not isinstance(event, Progress) or event.phase != phase:
            return False
        return event.readings[0].measured_level >= at_least

    return ready


@pytest.mark.parametrize(
    ("phase", "at_least"),
    [("ramp", 4_400), ("hold", 11_000), ("release", 5_000)],
)
async def test_pressure_never_rises_after_too_strong(
    journal: Journal, phase: str, at_least: int
) -> None:
    async with simulated("sim://?speed=20&seed=11") as sim:
        watch = Watch()
        runner = session(sim, journal, watch)
        lowered: list[CapLowered] = []
        pressed = asyncio.Event()
        after_press: list[float] = []
        ready = pressed_when(phase, at_least)

        def on_event(event: object) -> None:
            if isinstance(event, CapLowered):
                lowered.append(event)
            if pressed.is_set():
                after_press.append(sim.device.true_level)
            elif callable(ready) and ready(event):
                runner.too_strong()
                pressed.set()
                after_press.append(sim.device.true_level)

        runner.subscribe(on_event)
        task = asyncio.create_task(runner.run())
        await asyncio.wait_for(pressed.wait(), 120)
        await watch.until(lambda: len(after_press) > 60, within_s=60)  # 3 s of the band's time
        runner.stop()
        result = await task
    [event] = lowered
    felt = event.felt_level or 0
    assert event.cause == "too-strong" and event.level == int(felt * 0.7)
    assert felt >= at_least - 500, "felt: the level measured when pressed"
    at_press = after_press[0]
    assert max(after_press) <= at_press + NOISE_PA, f"rose after the press in the {phase}"
    assert after_press[-1] <= event.level + 1_000, "down to the new cap within 3 s"
    assert result.comfort_level == event.level
    assert journal.comfort_max("pressure") == {"PC6": event.level}
    [comfort] = journal.comfort_events(result.session_id)
    assert (comfort.old_level, comfort.new_level) == (felt, event.level)
