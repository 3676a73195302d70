"""ESTOP latency: from `Device.estop()` to the simulated firmware starting to vent.

Measured over the in-process link, a real pseudo-terminal and loopback TCP, each with the
simulator in this process so the moment the firmware handles ESTOP can be timestamped.
The ratio compares that latency with the ESTOP frame's wire time at 115200 baud: the
physical floor of a serial link. Prints figures; asserts nothing.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable

from acudevice.device import Device
from acudevice.protocol import Estop, Opcode, encode, frame
from acudevice.transport import open_transport
from simulator.loopback import SimTransport
from simulator.options import SimOptions
from simulator.server import PtyServer, TcpServer
from simulator.simulation import Simulation

ROUNDS = 200
BAUD = 115_200


def hook_vent_times(sim: Simulation) -> list[float]:
    """Timestamp every ESTOP the firmware handles (it vents as it handles it)."""
    stamps: list[float] = []
    handle: Callable[[bytes, float], bytes | None] = sim.device.handle

    def timed(payload: bytes, wall: float) -> bytes | None:
        reply = handle(payload, wall)
        if len(payload) >= 5 and payload[4] == Opcode.ESTOP:
            stamps.append(time.perf_counter())
        return reply

    sim.device.handle = timed  # type: ignore[method-assign]
    return stamps


async def measure(name: str, make: Callable[[Simulation], object]) -> tuple[str, list[float]]:
    sim = Simulation(SimOptions(speed=1))
    stamps = hook_vent_times(sim)
    target = make(sim)
    if isinstance(target, PtyServer):
        device = Device(open_transport(f"serial://{await target.start()}"))
    elif isinstance(target, TcpServer):
        device = Device(open_transport(f"tcp://127.0.0.1:{await target.start()}"))
    else:
        sim.start()
        device = Device(SimTransport.to(sim))
    latencies = []
    async with device:
        for _ in range(ROUNDS):
            before = len(stamps)
            t0 = time.perf_counter()
            await device.estop()
            if len(stamps) > before:
                latencies.append((stamps[before] - t0) * 1000)
            await asyncio.sleep(0.005)
    if isinstance(target, PtyServer | TcpServer):
        await target.close()
    await sim.stop()
    return name, latencies


async def main() -> None:
    wire_ms = len(frame(encode(Estop(), 0))) * 10 / BAUD * 1000
    print(
        f"ESTOP frame: {len(frame(encode(Estop(), 0)))} bytes = {wire_ms:.3f} ms at {BAUD} baud 8N1"
    )
    print(f"{'link':<12} {'median ms':>10} {'p99 ms':>8} {'median / wire time':>20}")
    for name, make in (("in-process", lambda s: None), ("pty", PtyServer), ("tcp", TcpServer)):
        name, values = await measure(name, make)
        values.sort()
        median = statistics.median(values)
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        print(f"{name:<12} {median:>10.3f} {p99:>8.3f} {median / wire_ms:>20.1f}")


if __name__ == "__main__":
    asyncio.run(main())
