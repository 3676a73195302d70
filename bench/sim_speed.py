"""Real-time factor of the simulator, through the path `acudevice run` takes; prints figures.

    .venv/bin/python bench/sim_speed.py [runs]

- end to end: nausea-relief (480 s) through `Session` with a journal on
  `sim://?speed=max` (screening, compiling, `Device`, the session monitor, SQLite), from
  `run()` to its return, including connecting and venting at the end;
- the device model alone: a `SimDevice` playing the same schedule with no transport.

Baseline, measured in the same run: the same device model forced to take a step every
10 ms of device time (what the simulator did before it went event-driven), so the ratio
says what event-driven time buys on this machine today. Goals (issue 12): 10,000x end to
end, 50,000x for the model alone.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from acudevice.plan.library import ProgramLibrary
from acudevice.protocol import Start
from acudevice.session.runner import Session
from acudevice.store import Journal
from simulator.client import DirectClient, ramp_hold_release
from simulator.device import SimDevice

PROGRAM = ProgramLibrary().get("nausea-relief")
SHAPE = ramp_hold_release(
    peak_level=12_000, ramp_ms=30_000, hold_ms=60_000, release_ms=30_000, repeats=4
)
DEVICE_S = SHAPE.total_ms / 1000


async def end_to_end(seed: int, journal: Journal) -> float:
    url = f"sim://?speed=max&seed={seed}"
    began = time.perf_counter()
    result = await Session(PROGRAM, [url], journal=journal).run()
    wall = time.perf_counter() - began
    assert result.outcome == "completed", result
    return wall


def device_alone(seed: int, *, fixed_step_ms: int | None = None) -> float:
    client = DirectClient(SimDevice(seed=seed))
    client.prepare(SHAPE)
    client.call(Start())
    device = client.device
    player = device.firmware.player
    began = time.perf_counter()
    while player is not None and not player.done:
        until = None if fixed_step_ms is None else device.now_ms + fixed_step_ms
        device.step(0.0, until)
        device.take_output()
    return time.perf_counter() - began


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as home, Journal(Path(home) / "j.sqlite3") as journal:
        asyncio.run(end_to_end(99, journal))  # warm imports and caches
        walls = [asyncio.run(end_to_end(seed, journal)) for seed in range(runs)]
    alone = [device_alone(seed) for seed in range(runs)]
    fixed = [device_alone(seed, fixed_step_ms=10) for seed in range(runs)]
    e2e, dev, base = (statistics.median(x) for x in (walls, alone, fixed))
    print(f"nausea-relief: {DEVICE_S:.0f} s of device time, {runs} runs each, medians")
    print(f"{'path':<44} {'wall ms':>9} {'real-time x':>12}")
    print(
        f"{'Session + journal on sim://?speed=max':<44} {e2e * 1000:>9.1f} {DEVICE_S / e2e:>12,.0f}"
    )
    print(f"{'device model alone (event-driven)':<44} {dev * 1000:>9.1f} {DEVICE_S / dev:>12,.0f}")
    print(
        f"{'baseline: same model, 10 ms fixed steps':<44} {base * 1000:>9.1f} {DEVICE_S / base:>12,.0f}"
    )
    print(f"event-driven vs fixed steps: {base / dev:.1f}x faster")
    print(
        f"goals: end to end {DEVICE_S / e2e / 10_000:.0%} of 10,000x, "
        f"model alone {DEVICE_S / dev / 50_000:.0%} of 50,000x"
    )


if __name__ == "__main__":
    main()
