"""How fast the simulator runs the nausea-relief shape at speed=max; prints, asserts nothing.

    .venv/bin/python bench/sim_speed.py [runs]

The schedule is the classic shape (30 s ramp to 12 kPa, 60 s hold, 30 s release, four
times: 8 minutes). Two figures: the whole path (`sim://` transport, framing, codec, the
host decoding every telemetry sample) and the device model alone (stepping a `SimDevice`
with no transport). The real-time factor is device seconds per wall second.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from acudevice.protocol import Reason, ScheduleDone, Start, StateChanged
from simulator.client import DirectClient, ProtocolClient, ramp_hold_release
from simulator.device import SimDevice
from simulator.loopback import SimTransport

NAUSEA = ramp_hold_release(
    peak_level=12_000, ramp_ms=30_000, hold_ms=60_000, release_ms=30_000, repeats=4
)
DEVICE_S = NAUSEA.total_ms / 1000


async def through_the_transport(seed: int) -> tuple[float, int]:
    """Wall seconds from START to SCHEDULE_DONE, and telemetry samples received."""
    async with ProtocolClient(SimTransport(f"sim://?speed=max&seed={seed}")) as client:
        await client.prepare(NAUSEA)
        began = time.perf_counter()
        await client.start()
        await client.wait_event(ScheduleDone, wait_s=60)
        wall = time.perf_counter() - began
        await client.wait_event(
            StateChanged, wait_s=10, where=lambda e: e.reason is Reason.VENT_DONE
        )
        return wall, len(client.samples())


def device_alone(seed: int) -> float:
    client = DirectClient(SimDevice(seed=seed))
    client.prepare(NAUSEA)
    client.call(Start())
    device = client.device
    began = time.perf_counter()
    while device.firmware.player is not None and not device.firmware.player.done:
        device.step(0.0)
        device.take_output()
    return time.perf_counter() - began


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    walls, samples = [], 0
    for seed in range(runs):
        wall, samples = asyncio.run(through_the_transport(seed))
        walls.append(wall)
    alone = [device_alone(seed) for seed in range(runs)]
    best, median = min(walls), statistics.median(walls)
    print(f"nausea-relief shape: {DEVICE_S:.0f} s of device time, {runs} runs, speed=max")
    print(
        f"  sim:// end to end : median {median:.3f} s wall, best {best:.3f} s "
        f"-> real-time factor {DEVICE_S / median:,.0f}x (best {DEVICE_S / best:,.0f}x), "
        f"{samples} telemetry samples"
    )
    print(
        f"  device model alone: median {statistics.median(alone):.3f} s wall "
        f"-> real-time factor {DEVICE_S / statistics.median(alone):,.0f}x"
    )


if __name__ == "__main__":
    main()
