"""Real-time factor of the simulator, through the path `acudevice run` takes; prints figures.

    .venv/bin/python bench/sim_speed.py [runs]

- end to end: nausea-relief (480 s) through `Session` with a journal on
  `sim://?speed=max` (screening, compiling, `Device`, the session monitor, SQLite), from
  `run()` to its return, including connecting and venting at the end;
- the device model alone: a `SimDevice` playing the same schedule with no transport, set
  up as a session sets up a band at speed=max (no clock, telemetry in 1 s batches).

Baselines, measured in the same run: the same device model forced to take a step every
10 ms of device time (what the simulator did before it went event-driven), and the whole
path again with the pure-Python model (`ACUDEVICE_SIM_PURE=1`, in a child process) beside
the mypyc-compiled one that `make install` builds (simulator/compiled.py). Goals (issue
12): 10,000x end to end, 50,000x for the model alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from acudevice.device.device import AUTO_BATCH_MS
from acudevice.plan.library import ProgramLibrary
from acudevice.protocol import SetTelemetry, Start
from acudevice.session.runner import Session
from acudevice.store import Journal
from simulator import compiled
from simulator.client import DirectClient, ramp_hold_release
from simulator.core.device import SimDevice

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
    client = DirectClient(SimDevice(seed=seed, time_scale=0))
    client.prepare(SHAPE)
    client.call(SetTelemetry(batch_ms=AUTO_BATCH_MS))
    client.call(Start())
    device = client.device
    began = time.perf_counter()
    if fixed_step_ms is None:
        while device.busy:  # the schedule, then the vent that closes it
            device.run(0.0, 1000)
    else:
        while device.busy:
            device.step(0.0, device.now_ms + fixed_step_ms)
            device.take_output()
    return time.perf_counter() - began


def measure(runs: int) -> dict[str, float]:
    """Median wall seconds of each path, with whichever model this process loaded."""
    with tempfile.TemporaryDirectory() as home, Journal(Path(home) / "j.sqlite3") as journal:
        asyncio.run(end_to_end(99, journal))  # warm imports and caches
        walls = [asyncio.run(end_to_end(seed, journal)) for seed in range(runs)]
    alone = [device_alone(seed) for seed in range(runs)]
    fixed = [device_alone(seed, fixed_step_ms=10) for seed in range(runs)]
    return {
        "e2e": statistics.median(walls),
        "alone": statistics.median(alone),
        "fixed": statistics.median(fixed),
    }


def measure_pure(runs: int) -> dict[str, float]:
    env = {**os.environ, compiled.PURE_ENV: "1"}
    done = subprocess.run(
        [sys.executable, __file__, str(runs), "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, float] = json.loads(done.stdout)
    return figures


def main() -> None:
    args = sys.argv[1:]
    runs = int(args[0]) if args and args[0].isdigit() else 5
    if "--json" in args:
        print(json.dumps(measure(runs)))
        return
    here = measure(runs)
    core = "compiled" if compiled.in_use() else "pure Python"
    rows = [
        (f"Session + journal on sim://?speed=max ({core})", here["e2e"]),
        (f"device model alone, event-driven ({core})", here["alone"]),
        (f"baseline: 10 ms fixed steps ({core})", here["fixed"]),
    ]
    pure = measure_pure(runs) if compiled.in_use() else None
    if pure is not None:
        rows += [
            ("baseline: Session + journal (pure Python)", pure["e2e"]),
            ("baseline: device model alone (pure Python)", pure["alone"]),
        ]
    print(f"nausea-relief: {DEVICE_S:.0f} s of device time, {runs} runs each, medians")
    print(f"{'path':<52} {'wall ms':>9} {'real-time x':>12}")
    for name, wall in rows:
        print(f"{name:<52} {wall * 1000:>9.1f} {DEVICE_S / wall:>12,.0f}")
    print(f"event-driven vs fixed steps: {here['fixed'] / here['alone']:.1f}x faster")
    if pure is not None:
        print(
            f"compiled vs pure Python: end to end {pure['e2e'] / here['e2e']:.2f}x, "
            f"model alone {pure['alone'] / here['alone']:.2f}x faster"
        )
    print(
        f"goals: end to end {DEVICE_S / here['e2e'] / 10_000:.0%} of 10,000x, "
        f"model alone {DEVICE_S / here['alone'] / 50_000:.0%} of 50,000x"
    )


if __name__ == "__main__":
    main()
