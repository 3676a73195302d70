"""ESTOP latency during a hold at pressure: from `Device.estop()` to the valve opening.

The band is held at 12 kPa (RUNNING, a long hold) before every ESTOP, so the firmware has
something to vent; the moment it opens the dump valve is timestamped inside the simulator,
which runs in this process (speed 1) behind the in-process link or a real pseudo-terminal
(as the Ack it sends once the valve is open).
Baseline, measured in the same run over the same pty: the raw round trip of one HEARTBEAT
through the transport alone (no `Device` layer), the floor a host can reach on that link.
Goal (issue 12): ESTOP-to-vent at most 3x the raw round trip. Prints figures only.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Callable

from acudevice.device import Device
from acudevice.protocol import FirmwareState, Heartbeat, Kind, Start, Stop, decode, encode
from acudevice.transport import open_transport
from simulator.client import DirectClient, ramp_hold_release
from simulator.loopback import SimTransport
from simulator.options import SimOptions
from simulator.server import PtyServer
from simulator.simulation import Simulation

ROUNDS = 100
HOLD = ramp_hold_release(peak_level=12_000, ramp_ms=6_000, hold_ms=600_000, release_ms=6_000)


class VentStamps:
    """Timestamps the first payload the simulator sends once the dump valve is open after
    `arm()`: the ESTOP's Ack, which goes out the moment the firmware has acted on it (the
    valve opens inside the request's handling, microseconds before). The clock's `send` is
    wrapped, not the device: the compiled model's methods cannot be replaced."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.times: list[float] = []
        self._armed = False
        self._send: Callable[[bytes], None] = sim.clock.send
        sim.clock.send = self._sent

    def arm(self) -> None:
        self._armed = True

    def _sent(self, payload: bytes) -> None:
        if self._armed and self.sim.device.firmware.actuation.vent:
            self.times.append(time.perf_counter())
            self._armed = False
        self._send(payload)


def pressurise(sim: Simulation) -> None:
    """Drive the band straight to a hold at 12 kPa in device time (between two awaits)."""
    client = DirectClient(sim.device)
    fw = sim.device.firmware
    if fw.state is not FirmwareState.IDLE:
        client.advance_until(lambda c: c.state is FirmwareState.IDLE, limit_s=30)
    client.prepare(HOLD)
    client.call(Start())
    client.advance(10.0)
    assert fw.state is FirmwareState.RUNNING and sim.device.true_level > 11_000
    fw.last_request_wall = None  # the host's own heartbeats feed the watchdog from here
    sim.device.take_output()


async def estop_rounds(sim: Simulation, device: Device, stamps: VentStamps) -> list[float]:
    latencies = []
    for _ in range(ROUNDS):
        pressurise(sim)
        before = len(stamps.times)
        stamps.arm()
        t0 = time.perf_counter()
        await device.estop()
        if len(stamps.times) > before:
            latencies.append((stamps.times[before] - t0) * 1000)
    return latencies


async def raw_round_trips(url: str) -> list[float]:
    transport = open_transport(url)
    await transport.connect()
    times = []
    try:
        replies = transport.payloads()
        for seq in range(ROUNDS):
            t0 = time.perf_counter()
            await transport.send(encode(Heartbeat(), seq))
            await _reply(replies, seq)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        await transport.close()
    return times


async def over(link: str) -> tuple[list[float], list[float]]:
    sim = Simulation(SimOptions(speed=1))
    stamps = VentStamps(sim)
    server = None
    if link == "pty":
        server = PtyServer(sim)
        url = f"serial://{await server.start()}"
        raw = await raw_round_trips(url)
        device = Device(open_transport(url))
    else:
        sim.start()
        raw = await raw_round_trips_in_process(sim)
        device = Device(SimTransport.to(sim))
    async with device:
        latencies = await estop_rounds(sim, device, stamps)
        await device.link.request(Stop(), deadline_s=2.0)
    if server is not None:
        await server.close()
    await sim.stop()
    return latencies, raw


async def raw_round_trips_in_process(sim: Simulation) -> list[float]:
    transport = SimTransport.to(sim)
    await transport.connect()
    times = []
    replies = transport.payloads()
    for seq in range(ROUNDS):
        t0 = time.perf_counter()
        await transport.send(encode(Heartbeat(), seq))
        await _reply(replies, seq)
        times.append((time.perf_counter() - t0) * 1000)
    await transport.close()
    return times


async def _reply(payloads: AsyncIterator[bytes], seq: int) -> None:
    """Skip telemetry and events until the response with this seq."""
    while True:
        envelope = decode(await anext(payloads))
        if envelope.kind is Kind.RESPONSE and envelope.seq == seq:
            return


async def main() -> None:
    print(f"ESTOP at 12 kPa during a hold, {ROUNDS} rounds per link, simulator at speed 1")
    rows = {link: await over(link) for link in ("in-process", "pty")}
    pty_rtt = statistics.median(rows["pty"][1])
    print(f"baseline: raw HEARTBEAT round trip over the pty, transport only: {pty_rtt:.3f} ms")
    print(f"{'link':<12} {'estop->vent ms':>15} {'p99':>8} {'link raw rtt':>13} {'/ pty rtt':>10}")
    for link, (latencies, raw) in rows.items():
        latencies.sort()
        median = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        rtt = statistics.median(raw)
        print(f"{link:<12} {median:>15.3f} {p99:>8.3f} {rtt:>13.3f} {median / pty_rtt:>10.2f}")
    print("ratio = median ESTOP-to-vent / the pty raw round trip (goal <= 3)")


if __name__ == "__main__":
    asyncio.run(main())
